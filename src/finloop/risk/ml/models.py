"""Risk ml tables."""

from __future__ import annotations
