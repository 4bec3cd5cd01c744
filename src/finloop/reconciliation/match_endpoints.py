"""Reconciliation matching HTTP endpoints: runs, matches, discrepancies and unified statements."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reconciliation"])
