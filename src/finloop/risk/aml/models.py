"""Risk aml tables."""

from __future__ import annotations
