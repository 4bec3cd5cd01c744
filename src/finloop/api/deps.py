"""Request dependencies: the database, the caller's identity, and the write context of a POST.

``Writer.run`` is the one place a write request commits: it opens the unit of work, runs the
service call, stores the response under the Idempotency-Key in the same transaction, and commits.
A write request crosses into the thread pool once (the endpoint): the dependencies before it do no
blocking I/O, and a known API key is answered from memory (docs/adr/0003-api-hot-path.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from finloop.api.errors import ReplayResponse
from finloop.config import Settings
from finloop.core.errors import FinloopError, Unauthenticated
from finloop.db import idempotency
from finloop.db.uow import Database, UnitOfWork
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal

T = TypeVar("T")


# The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
# pool, and each such hop cost more CPU than the work it wrapped (docs/adr/0003-api-hot-path.md).


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


#: Declares bearer auth in the OpenAPI spec; a missing or malformed header is our own 401, not FastAPI's.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key (fl_sk_...) or a staff session (fl_ss_...).")


def _authenticate(db: Database, token: str) -> Principal:
    with db.uow(single_statement=True) as uow:
        return tenancy.authenticate(uow, token)


async def get_principal(request: Request, db: Annotated[Database, Depends(get_database)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                        ) -> Principal:
    """The caller: an API key seen in the last ``KEY_CACHE_SECONDS`` is answered from memory on the event
    loop; anything else is read from the database in the thread pool."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("Send your API key as 'Authorization: Bearer <key>'.", code="missing_api_key")
    token = credentials.credentials.strip()
    principal = tenancy.cached_principal(token, db.clock.now())
    if principal is None:
        principal = await run_in_threadpool(_authenticate, db, token)
    request.state.tenant_id = principal.tenant_id
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


@dataclass
class Reader:
    db: Database
    principal: Principal

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        with self.db.uow(read_only=True) as uow:
            return work(uow)


async def get_reader(db: Annotated[Database, Depends(get_database)], principal: CurrentPrincipal) -> Reader:
    return Reader(db, principal)


class RenderedJSON(JSONResponse):
    """A JSON response whose body is already bytes (rendered by pydantic)."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


def render(result: BaseModel | dict[str, Any], status_code: int = 200) -> JSONResponse:
    """The JSON response for ``result``.

    A model is written by pydantic's own serializer, straight to bytes: ``jsonable_encoder`` dumps it to
    a dict and then walks every value again in Python, which cost more than the rest of the response.
    The JSON is the same (``jsonable_encoder`` itself dumps models with ``mode="json", by_alias=True``).
    """
    if isinstance(result, BaseModel):
        return RenderedJSON(result.model_dump_json(by_alias=True).encode(), status_code=status_code)
    return JSONResponse(content=jsonable_encoder(result), status_code=status_code)


@dataclass
class Writer:
    db: Database
    principal: Principal
    claim: idempotency.Claim | None = None
    completed: bool = False
    #: The answer a flow gave in its last transaction (``answer_in``), returned once that transaction committed.
    _answered: JSONResponse | None = None

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def run(self, work: Callable[[UnitOfWork], BaseModel | dict[str, Any]], *, status_code: int = 200,
            permission: str | None = None,
            stored: Callable[[Any], Any] | None = None) -> JSONResponse:
        """Run ``work`` in one transaction and commit.

        ``stored`` rewrites the body kept for Idempotency-Key replays: a response carrying a secret
        keeps it only in the first answer, never in the database.
        """
        if permission:
            self.principal.require(permission)
        with self.db.uow() as uow:
            try:
                result = work(uow)
            except FinloopError as error:
                if getattr(error, "keep_changes", False):
                    uow.commit()
                raise
            response = render(result, status_code)
            if self.claim is not None:
                kept = response if stored is None else JSONResponse(content=stored(jsonable_encoder(result)))
                idempotency.complete(uow, self.claim, status_code, bytes(kept.body).decode())
            uow.commit()
        self.completed = True
        return response

    def answer_in(self, uow: UnitOfWork, result: BaseModel, *, status_code: int = 200) -> None:
        """For a flow to call inside its last transaction, just before committing it: the answer is rendered
        from what that transaction commits and stored for Idempotency-Key replays in it, as ``run`` does in
        its own; ``run_flow`` then returns it without another transaction. The flow must commit next (or
        raise): an answer given in a transaction that does not commit is never returned."""
        response = render(result, status_code)
        if self.claim is not None:
            idempotency.complete(uow, self.claim, status_code, bytes(response.body).decode())
        self._answered = response

    def run_flow(self, flow: Callable[[], None], read: Callable[[UnitOfWork], BaseModel | dict[str, Any]], *,
                 status_code: int = 200, permission: str | None = None) -> JSONResponse:
        """Run a flow that commits its own transactions (a channel call sits between them), then answer
        with ``read``'s view of the result, stored for Idempotency-Key replays as ``run`` does; unless the
        flow already answered in its last transaction (``answer_in``)."""
        if permission:
            self.principal.require(permission)
        self._answered = None
        flow()
        if self._answered is not None:
            self.completed = True
            return self._answered
        return self.run(read, status_code=status_code)


IdempotencyKeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="Makes the request safe to retry: the same key and body replay the first response for 24 hours.")]


@asynccontextmanager
async def writing(request: Request, principal: Principal, idempotency_key: str | None) -> AsyncIterator[Writer]:
    """The write context of a POST: its Idempotency-Key claimed first (a replay answers here), released
    again if the request ends without completing."""
    db: Database = request.app.state.database
    settings: Settings = request.app.state.settings
    writer = Writer(db, principal)
    if idempotency_key is not None:
        body = await request.body()
        fingerprint = b"\n".join([request.method.encode(), request.url.path.encode(), request.url.query.encode(),
                                  body])
        def claim_key() -> idempotency.Claim:
            # The hash key is resolved here, off the event loop: the first call may read the vault's key file.
            return idempotency.claim(
                db, tenant_id=principal.tenant_id, key=idempotency_key, method=request.method,
                path=request.url.path, fingerprint=fingerprint, ttl_seconds=settings.idempotency_ttl_seconds,
                lease_seconds=settings.idempotency_lease_seconds, hash_key=idempotency.hash_key(settings))

        claim = await run_in_threadpool(claim_key)
        if claim.replay is not None:
            raise ReplayResponse(*claim.replay)
        writer.claim = claim
    try:
        yield writer
    finally:
        if writer.claim is not None and not writer.completed:
            await run_in_threadpool(idempotency.release, db, writer.claim)


async def get_writer(request: Request, principal: CurrentPrincipal, idempotency_key: IdempotencyKeyHeader = None,
                     ) -> AsyncIterator[Writer]:
    async with writing(request, principal, idempotency_key) as writer:
        yield writer


CurrentReader = Annotated[Reader, Depends(get_reader)]
CurrentWriter = Annotated[Writer, Depends(get_writer)]
