"""Append-only, hash-chained audit log of every change to configuration and authority."""
