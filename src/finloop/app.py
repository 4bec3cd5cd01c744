"""The FastAPI application: ``/v1`` API, OpenAPI at ``/openapi.json``, health, readiness and metrics."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from finloop import __version__
from finloop.api import errors, observability
from finloop.api.router import api_router
from finloop.config import Settings, get_settings
from finloop.console import routes as console
from finloop.db.migrate import is_up_to_date
from finloop.db.uow import Database
from finloop.logging import configure


def create_app(settings: Settings | None = None, database: Database | None = None, *,
               access_log: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure(settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="finloop",
        version=__version__,
        summary="Fund infrastructure: a double-entry ledger under payments, settlement and credit.",
        description="Amounts are JSON integers of minor units with an ISO 4217 currency. Authenticate with "
                    "`Authorization: Bearer <key>`. Every POST accepts an `Idempotency-Key` header.",
    )
    app.state.settings = settings
    app.state.database = database or Database(settings.database_url,
                                              busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    errors.install(app)
    observability.install(app, access_log=access_log)
    app.include_router(api_router, prefix="/v1")
    console.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        db: Database = app.state.database
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            migrated = is_up_to_date(db.engine, db.url)
        except Exception as error:  # noqa: BLE001 - readiness reports any failure as not ready
            return JSONResponse(status_code=503, content={"status": "unavailable", "reason": type(error).__name__})
        if not migrated:
            return JSONResponse(status_code=503, content={"status": "migrations_pending"})
        return JSONResponse(content={"status": "ready"})

    return app
