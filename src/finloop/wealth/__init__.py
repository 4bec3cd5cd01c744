"""Balance wealth management: a money-market fund that customers and merchants sweep idle balances into.
"""
