"""Reconciliation: channel bills and bank statements imported, matched against our records, discrepancies worked.
"""
