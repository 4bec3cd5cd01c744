"""``/v1/reports``: every report as JSON data."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reports"])
