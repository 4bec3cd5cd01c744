"""Association network tables."""

from __future__ import annotations
