"""The credit model registry: trained models stored as tables, versions, champion and challenger.

A training run stores its scorecard and its GBM as two drafts sharing a name and a version. Statuses move
along ``TRANSITIONS`` (an illegal move is a 409): a draft or a retired model can be promoted to champion
or challenger, a challenger to champion; promoting retires the name's previous holder of that status, so a
name has at most one champion and one challenger; any model can be retired. Every move is audited with
its before and after. Scoring finds the champion and challenger of a name through ``active``: read at most
once per second per process (``ACTIVE_TTL``; this process forgets at once on promote or retire).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit.domain import ModelKind, ModelStatus, check_model_name
from finloop.credit.models import CreditModel
from finloop.credit.scorecard import ModelResult, Trained, digest
from finloop.db.uow import UnitOfWork

TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.DRAFT: frozenset({ModelStatus.CHALLENGER, ModelStatus.CHAMPION, ModelStatus.RETIRED}),
    ModelStatus.CHALLENGER: frozenset({ModelStatus.CHAMPION, ModelStatus.RETIRED}),
    ModelStatus.CHAMPION: frozenset({ModelStatus.RETIRED}),
    ModelStatus.RETIRED: frozenset({ModelStatus.CHAMPION, ModelStatus.CHALLENGER}),
}
PROMOTABLE = (ModelStatus.CHAMPION, ModelStatus.CHALLENGER)
ACTIVE_TTL = 1.0


def snapshot(row: CreditModel) -> dict[str, Any]:
    return {"name": row.name, "version": row.version, "kind": row.kind, "status": row.status}


def _store(uow: UnitOfWork, tenant_id: str, trained: Trained, result: ModelResult, *, name: str, version: int,
           actor: str, data_from: datetime | None, data_to: datetime | None) -> CreditModel:
    used = {v["name"] for v in result.tables["variables"]} if result.kind is ModelKind.SCORECARD else None
    features = [f for f in trained.features if used is None or f["name"] in used]
    row = CreditModel(
        id=uow.ids.new("credit_model"), tenant_id=tenant_id, name=name, version=version, kind=result.kind.value,
        status=ModelStatus.DRAFT.value, dataset=trained.dataset, features=features, tables=result.tables,
        digest=digest(result.tables), scaling=trained.scaling.to_json(),
        metrics={**result.metrics, "split": trained.split}, params=result.params, reference=result.reference,
        data_from=data_from, data_to=data_to, drift=None, drift_at=None, created_by=actor[:60],
        created_at=uow.clock.now(), promoted_at=None, retired_at=None)
    uow.session.add(row)
    return row


def register(uow: UnitOfWork, tenant_id: str, trained: Trained, *, name: str, actor: str,
             data_from: datetime | None = None, data_to: datetime | None = None) -> tuple[CreditModel, CreditModel]:
    """Store a training run's scorecard and GBM as drafts of the next version of ``name``."""
    name = check_model_name(name)
    latest = uow.session.scalar(select(func.max(CreditModel.version)).where(
        CreditModel.tenant_id == tenant_id, CreditModel.name == name))
    version = (latest or 0) + 1
    card = _store(uow, tenant_id, trained, trained.scorecard, name=name, version=version, actor=actor,
                  data_from=data_from, data_to=data_to)
    gbm = _store(uow, tenant_id, trained, trained.gbm, name=name, version=version, actor=actor,
                 data_from=data_from, data_to=data_to)
    uow.session.flush()
    for row in (card, gbm):
        audit.record(uow, tenant_id, actor=actor, action="credit.model.trained", object_type="credit_model",
                     object_id=row.id, after={**snapshot(row), "dataset": row.dataset, "metrics": {
                         k: row.metrics[k] for k in ("auc", "ks", "gini")}})
    return card, gbm


def get_model(uow: UnitOfWork, tenant_id: str, model_id: str, *, lock: bool = False) -> CreditModel:
    query = select(CreditModel).where(CreditModel.tenant_id == tenant_id, CreditModel.id == model_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such credit model: {model_id[:40]}.", code="credit_model_not_found", param="model_id")
    return row


def list_models(uow: UnitOfWork, tenant_id: str, *, name: str | None = None, status: str | None = None,
                kind: str | None = None, after: str | None = None, limit: int = 50) -> list[CreditModel]:
    """Up to ``limit + 1`` models in id order."""
    query = select(CreditModel).where(CreditModel.tenant_id == tenant_id)
    if name:
        query = query.where(CreditModel.name == name)
    if status:
        query = query.where(CreditModel.status == status)
    if kind:
        query = query.where(CreditModel.kind == kind)
    if after:
        query = query.where(CreditModel.id > after)
    return list(uow.session.scalars(query.order_by(CreditModel.id).limit(limit + 1)))


def _move(uow: UnitOfWork, tenant_id: str, row: CreditModel, to: ModelStatus, *, actor: str) -> None:
    current = ModelStatus(row.status)
    if to not in TRANSITIONS[current]:
        raise Conflict(f"A {current.value} model cannot become {to.value}.", code="invalid_model_transition",
                       param="model_id")
    before = snapshot(row)
    row.status = to.value
    now = uow.clock.now()
    if to is ModelStatus.RETIRED:
        row.retired_at = now
    else:
        row.promoted_at, row.retired_at = now, None
    uow.session.flush()
    action = "credit.model.retired" if to is ModelStatus.RETIRED else f"credit.model.promoted_{to.value}"
    audit.record(uow, tenant_id, actor=actor, action=action, object_type="credit_model", object_id=row.id,
                 before=before, after=snapshot(row))


def promote(uow: UnitOfWork, tenant_id: str, model_id: str, *, to: ModelStatus | str, actor: str) -> CreditModel:
    """Make the model its name's champion or challenger; the previous one retires."""
    try:
        target = ModelStatus(to)
    except ValueError:
        target = None
    if target not in PROMOTABLE:
        raise InvalidRequest("Promote to champion or challenger.", code="invalid_promotion", param="to")
    assert target is not None
    row = get_model(uow, tenant_id, model_id, lock=True)
    if row.status == target.value:
        raise Conflict(f"This model is already the {target.value}.", code="invalid_model_transition",
                       param="model_id")
    if target not in TRANSITIONS[ModelStatus(row.status)]:
        raise Conflict(f"A {row.status} model cannot become {target.value}.", code="invalid_model_transition",
                       param="model_id")
    holders = uow.session.scalars(select(CreditModel).where(
        CreditModel.tenant_id == tenant_id, CreditModel.name == row.name, CreditModel.status == target.value,
        CreditModel.id != row.id).order_by(CreditModel.id).with_for_update()).all()
    for old in holders:
        _move(uow, tenant_id, old, ModelStatus.RETIRED, actor=actor)
    _move(uow, tenant_id, row, target, actor=actor)
    forget(tenant_id)
    return row


def retire(uow: UnitOfWork, tenant_id: str, model_id: str, *, actor: str) -> CreditModel:
    row = get_model(uow, tenant_id, model_id, lock=True)
    _move(uow, tenant_id, row, ModelStatus.RETIRED, actor=actor)
    forget(tenant_id)
    return row


# ---------------------------------------------------------------------------------------------- active models


@dataclass(frozen=True, slots=True)
class Active:
    """(model id, digest) of a name's champion and challenger, None where there is none."""

    champion: tuple[str, str] | None
    challenger: tuple[str, str] | None


_lock = threading.Lock()
_active: dict[tuple[str, str], tuple[float, Active]] = {}


def forget(tenant_id: str | None = None) -> None:
    with _lock:
        if tenant_id is None:
            _active.clear()
        else:
            for key in [k for k in _active if k[0] == tenant_id]:
                del _active[key]


def active(uow: UnitOfWork, tenant_id: str, name: str) -> Active:
    now = time.monotonic()
    with _lock:
        cached = _active.get((tenant_id, name))
    if cached is not None and cached[0] > now:
        return cached[1]
    rows: Sequence[Any] = uow.session.execute(select(CreditModel.id, CreditModel.digest, CreditModel.status).where(
        CreditModel.tenant_id == tenant_id, CreditModel.name == name,
        CreditModel.status.in_((ModelStatus.CHAMPION.value, ModelStatus.CHALLENGER.value)))
        .order_by(CreditModel.id)).all()
    by_status = {status: (model_id, digest_) for model_id, digest_, status in rows}
    found = Active(by_status.get(ModelStatus.CHAMPION.value), by_status.get(ModelStatus.CHALLENGER.value))
    with _lock:
        if len(_active) > 10_000:
            _active.clear()
        _active[(tenant_id, name)] = (now + ACTIVE_TTL, found)
    return found
