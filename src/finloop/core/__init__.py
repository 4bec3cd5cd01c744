"""Kernel: money, ids, clock, errors and business time. Depends on nothing else in finloop."""
