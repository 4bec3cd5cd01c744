"""Reconciliation matching tables: runs, matches and discrepancies."""

from __future__ import annotations
