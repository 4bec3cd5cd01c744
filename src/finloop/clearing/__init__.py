"""Clearing: fee schedules per channel and payment method, fees on success and refund, daily clearing batches per
channel.
"""
