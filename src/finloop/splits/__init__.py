"""Split settlement: split rules, promoters, merchant hierarchies, real-time split on payment success and refund
claw-back.
"""
