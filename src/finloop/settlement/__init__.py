"""Settlement: cycles on the business calendar, freeze and rolling reserve, settlement batches, FX and merchant
statements.
"""
