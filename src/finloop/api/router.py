"""All ``/v1`` routers in one place."""

from __future__ import annotations

from fastapi import APIRouter

from finloop.ledger.endpoints import router as ledger_router
from finloop.tenancy.endpoints import router as tenancy_router

api_router = APIRouter()
api_router.include_router(ledger_router)
api_router.include_router(tenancy_router)
