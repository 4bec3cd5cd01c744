"""Settlement tables."""

from __future__ import annotations
