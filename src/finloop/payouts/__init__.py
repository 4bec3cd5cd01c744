"""Payouts: merchant and promoter withdrawals, automatic payouts, the sandbox bank payout connector, approvals
and returns.
"""
