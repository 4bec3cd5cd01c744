"""Customer-facing pages: the checkout."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
