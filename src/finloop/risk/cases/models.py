"""Risk cases tables."""

from __future__ import annotations
