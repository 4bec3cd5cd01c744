"""Scoring applicants: on demand (real time) and monthly in batch, and the population stability of scores.

- ``score_applicant`` computes the applicant's features as of now, scores them with the champion of the
  model name (and the challenger beside it, recorded but not of record), rates the score by the tenant's
  bands and stores a ``credit_score`` row: score, rating, probability of default, reasons, the features
  read, the model and version. Later slices (limits, applications) call it, or read the latest row.
- ``rescore_batch`` scores up to ``limit`` applicants that have no batch score for the month yet: one
  query finds them, features are computed set-wise for all of them, one multi-row insert stores them.
  Run until it returns 0; running it again for the same month writes nothing (the table's unique key on
  applicant, model name and month backs this).
- ``population_stability`` compares the scores a model gave (a month's batch, or the last days) with its
  training scores (the reference stored with it) by PSI, with the risk engine's ``drift`` functions.
Compiled models are cached per process by the digest of their tables (they never change once stored).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select

from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit import features as credit_features
from finloop.credit import registry
from finloop.credit import service as credit
from finloop.credit.domain import (
    DEFAULT_MODEL_NAME,
    PLATFORM_FEATURE_NAMES,
    RatingBand,
    Scaling,
    ScoreMode,
    check_model_name,
    check_month,
    probability_text,
    rating_for,
    score_of,
)
from finloop.credit.models import Applicant, CreditModel, CreditScore
from finloop.credit.scorecard import CompiledModel, Evaluation, compile_model
from finloop.db.uow import UnitOfWork
from finloop.risk.ml import drift

BATCH_LIMIT = 500
MAX_MONITORED = 50_000

_lock = threading.Lock()
_compiled: dict[str, Entry] = {}
_MAX_COMPILED = 32


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored model ready to score, with what a score row records of it."""

    id: str
    name: str
    version: int
    kind: str
    model: CompiledModel


def compile_row(row: CreditModel) -> CompiledModel:
    descriptions = {f["name"]: f.get("description", f["name"]) for f in row.features}
    return compile_model(row.kind, row.tables, Scaling.from_json(row.scaling), descriptions)


def compiled(uow: UnitOfWork, tenant_id: str, model_id: str, digest: str | None = None) -> Entry:
    """The model ready to score, parsed once per process (a stored model never changes)."""
    if digest is not None:
        with _lock:
            found = _compiled.get(digest)
        if found is not None and found.id == model_id:
            return found
    row = registry.get_model(uow, tenant_id, model_id)
    entry = Entry(row.id, row.name, row.version, row.kind, compile_row(row))
    with _lock:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        _compiled[row.digest] = entry
    return entry


@dataclass(frozen=True, slots=True)
class Scored:
    model_id: str
    evaluation: Evaluation
    score: int
    rating: str


def _applicable(model: CompiledModel) -> bool:
    return all(name in PLATFORM_FEATURE_NAMES for name in model.names)


def _score(entry: Entry, values: Mapping[str, Any], bands: Sequence[RatingBand]) -> Scored:
    evaluation = entry.model.evaluate(values)
    score = score_of(evaluation.points)
    return Scored(entry.id, evaluation, score, rating_for(score, bands).value)


@dataclass(frozen=True, slots=True)
class Models:
    champion: Entry
    challenger: Entry | None


def _models(uow: UnitOfWork, tenant_id: str, name: str) -> Models:
    found = registry.active(uow, tenant_id, name)
    if found.champion is None:
        raise Conflict(f"No champion model named {name!r}: train one and promote it.", code="no_champion_model",
                       param="model_name")
    champion = compiled(uow, tenant_id, *found.champion)
    if not _applicable(champion.model):
        unknown = [n for n in champion.model.names if n not in PLATFORM_FEATURE_NAMES]
        raise Conflict(f"The model reads features applicants do not have ({', '.join(unknown[:3])}...): it was "
                       "trained on another data set.", code="model_not_applicable", param="model_name")
    challenger = None
    if found.challenger is not None:
        entry = compiled(uow, tenant_id, *found.challenger)
        challenger = entry if _applicable(entry.model) else None
    return Models(champion, challenger)


def _row(uow: UnitOfWork, tenant_id: str, applicant_id: str, models: Models, values: Mapping[str, Any],
         bands: Sequence[RatingBand], *, mode: ScoreMode, month: str | None, as_of: datetime) -> dict[str, Any]:
    champion = models.champion
    scored = _score(champion, values, bands)
    challenger = None
    if models.challenger is not None:
        other = _score(models.challenger, values, bands)
        challenger = {"model_id": other.model_id, "kind": models.challenger.kind, "score": other.score,
                      "rating": other.rating, "probability": str(probability_text(other.evaluation.probability))}
    return {"id": uow.ids.new("credit_score"), "tenant_id": tenant_id, "applicant_id": applicant_id,
            "model_id": champion.id, "model_name": champion.name, "model_version": champion.version,
            "model_kind": champion.kind, "score": scored.score,
            "probability": probability_text(scored.evaluation.probability),
            "rating": scored.rating, "reasons": [r.to_json() for r in scored.evaluation.reasons],
            "features": dict(values), "challenger": challenger, "mode": mode.value, "batch_month": month,
            "as_of": as_of, "scored_at": uow.clock.now()}


def score_applicant(uow: UnitOfWork, tenant_id: str, applicant_id: str, *,
                    model_name: str = DEFAULT_MODEL_NAME) -> CreditScore:
    """Score one applicant now with the champion of ``model_name``; the row is stored and returned."""
    model_name = check_model_name(model_name)
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    models = _models(uow, tenant_id, model_name)
    as_of = uow.clock.now()
    values = credit_features.compute(uow, tenant_id, [applicant], as_of)[applicant.id]
    row = CreditScore(**_row(uow, tenant_id, applicant.id, models, values, credit.get_bands(uow, tenant_id),
                             mode=ScoreMode.REAL_TIME, month=None, as_of=as_of))
    uow.session.add(row)
    uow.session.flush()
    return row


def rescore_batch(uow: UnitOfWork, tenant_id: str, *, month: str, model_name: str = DEFAULT_MODEL_NAME,
                  as_of: datetime | None = None, limit: int = BATCH_LIMIT) -> int:
    """Score up to ``limit`` applicants without a batch score of ``month``; how many were scored (0: done, or
    no champion to score with)."""
    month = check_month(month)
    model_name = check_model_name(model_name)
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("limit is 1-10000.", code="invalid_limit", param="limit")
    if registry.active(uow, tenant_id, model_name).champion is None:
        return 0
    models = _models(uow, tenant_id, model_name)
    scored = exists().where(CreditScore.tenant_id == tenant_id, CreditScore.applicant_id == Applicant.id,
                            CreditScore.model_name == model_name, CreditScore.batch_month == month)
    applicants = list(uow.session.scalars(select(Applicant).where(Applicant.tenant_id == tenant_id, ~scored)
                                          .order_by(Applicant.id).limit(limit)))
    if not applicants:
        return 0
    as_of = as_of or uow.clock.now()
    values = credit_features.compute(uow, tenant_id, applicants, as_of)
    bands = credit.get_bands(uow, tenant_id)
    rows = [_row(uow, tenant_id, a.id, models, values[a.id], bands, mode=ScoreMode.BATCH, month=month, as_of=as_of)
            for a in applicants]
    uow.session.execute(insert(CreditScore), rows)
    return len(rows)


def get_score(uow: UnitOfWork, tenant_id: str, score_id: str) -> CreditScore:
    from finloop.core.errors import NotFound

    row = uow.session.scalar(select(CreditScore).where(CreditScore.tenant_id == tenant_id, CreditScore.id == score_id))
    if row is None:
        raise NotFound(f"No such credit score: {score_id[:40]}.", code="credit_score_not_found", param="score_id")
    return row


def latest_score(uow: UnitOfWork, tenant_id: str, applicant_id: str) -> CreditScore | None:
    """The applicant's most recent score (real time or batch), or None."""
    return uow.session.scalar(select(CreditScore).where(CreditScore.tenant_id == tenant_id,
                                                        CreditScore.applicant_id == applicant_id)
                              .order_by(CreditScore.scored_at.desc(), CreditScore.id.desc()).limit(1))


def list_scores(uow: UnitOfWork, tenant_id: str, *, applicant_id: str | None = None, month: str | None = None,
                model_id: str | None = None, after: str | None = None, limit: int = 50) -> list[CreditScore]:
    query = select(CreditScore).where(CreditScore.tenant_id == tenant_id)
    if applicant_id:
        query = query.where(CreditScore.applicant_id == applicant_id)
    if month:
        query = query.where(CreditScore.batch_month == check_month(month))
    if model_id:
        query = query.where(CreditScore.model_id == model_id)
    if after:
        query = query.where(CreditScore.id > after)
    return list(uow.session.scalars(query.order_by(CreditScore.id).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- monitoring


def population_stability(uow: UnitOfWork, tenant_id: str, model_id: str, *, month: str | None = None,
                         days: int = 30, record: bool = False) -> dict[str, Any]:
    """PSI of the scores ``model_id`` gave (as champion, or beside it as challenger) in the batch of ``month``,
    or else in the last ``days`` days, against its training scores. With ``record``, stored on the model."""
    model = registry.get_model(uow, tenant_id, model_id, lock=record)
    if not 1 <= days <= 366:
        raise InvalidRequest("days is 1-366.", code="invalid_days", param="days")
    query = select(CreditScore.model_id, CreditScore.score, CreditScore.challenger).where(
        CreditScore.tenant_id == tenant_id, CreditScore.model_name == model.name)
    if month is not None:
        query = query.where(CreditScore.batch_month == check_month(month))
        since = None
    else:
        since = uow.clock.now() - timedelta(days=days)
        query = query.where(CreditScore.scored_at >= since)
    scores: list[float] = []
    for champion_id, score, challenger in uow.session.execute(
            query.order_by(CreditScore.scored_at.desc()).limit(MAX_MONITORED)):
        if champion_id == model.id:
            scores.append(float(score))
        elif challenger and challenger.get("model_id") == model.id:
            scores.append(float(challenger["score"]))
    result: dict[str, Any] = {"model_id": model.id, "month": month, "since": since.isoformat() if since else None,
                              "at": uow.clock.now().isoformat(), "scores": len(scores)}
    result.update(drift.compare(model.reference, scores) if scores else {"psi": None, "level": None})
    if record:
        model.drift, model.drift_at = result, uow.clock.now()
        uow.session.flush()
    return result
