"""Benchmarks behind ``finloop bench <area>``.

Every figure is measured beside its anchor in the same run (raw SQL for the ledger, a bare FastAPI
endpoint for the API), so a ratio survives a noisy machine even when the absolute numbers do not.
"""
