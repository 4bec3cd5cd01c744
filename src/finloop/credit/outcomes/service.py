"""Loan outcomes: labelling, the retraining data set, and the comparison of a candidate model with the champion.

- ``label_outcomes`` labels, by the rules of ``domain.label_for`` and the tenant's policy, every loan account
  whose outcome became known and that has no outcome yet: one query finds up to ``limit`` of them (with the
  product's grace days and the application's score), one multi-row insert stores them (a conflict on the
  loan adds nothing, so a rerun, or two runs racing, never label a loan twice). Defaults written off whose
  recoveries have since reached the policy's share become ``recovered`` (one bulk update). Accounts are read
  as they stand; ``as_of`` decides whether a loan's performance window has ended and is recorded as the
  labelling date.
- ``portfolio_dataset`` joins each labelled loan that was scored at application with its score's features
  (what the model read at decision time) and its ``bad`` label: a ``scorecard.Dataset`` of the platform
  features, ordered by disbursement date.
- ``compare`` scores the same labelled loans with a candidate and the champion (or another model): an
  out-of-time holdout (loans disbursed after the candidate's training data) when it holds at least
  ``MIN_HOLDOUT`` loans with ``MIN_CLASS`` good and bad ones, otherwise every labelled loan. It reports AUC, KS
  and Gini of each, the PSI of the candidate's scores against the champion's, the swap set at the rating
  policy's reject threshold and a recommendation, and records the result in the candidate's metrics
  (``metrics["comparison"]``). Promotion stays the registry's.
- ``retrain_from_outcomes`` trains on the portfolio data set (the most recent ``holdout_share`` of loans kept
  out), registers the scorecard and GBM as drafts and compares each with the champion. Training runs outside
  any transaction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, func, or_, select, update

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import registry, scorecard, scoring
from finloop.credit import service as credit
from finloop.credit.domain import DEFAULT_MODEL_NAME, PLATFORM_FEATURE_NAMES, PLATFORM_FEATURES, score_of
from finloop.credit.models import CreditModel, CreditScore, Loan, LoanApplication, LoanProduct
from finloop.credit.outcomes import domain
from finloop.credit.outcomes.domain import OutcomeLabel, OutcomePolicy
from finloop.credit.outcomes.models import LoanOutcome
from finloop.credit.outcomes.models import OutcomePolicy as PolicyRow
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import Database, UnitOfWork
from finloop.risk.ml import drift

#: Accounts labelled per call: 22 columns a row stay under SQLite's bound-parameter limit in one statement.
LABEL_BATCH = 500
MIN_HOLDOUT = 30
MIN_CLASS = 5
DATASET_NAME = "portfolio"
DEFAULT_HOLDOUT_SHARE = 0.25


# ---------------------------------------------------------------------------------------------- policy


def policy_row(uow: UnitOfWork, tenant_id: str) -> PolicyRow:
    row = uow.session.get(PolicyRow, tenant_id)
    if row is not None:
        return row
    return PolicyRow(tenant_id=tenant_id, policy=domain.DEFAULT_POLICY.to_json(), updated_by="default",
                     updated_at=uow.clock.now())


def get_policy(uow: UnitOfWork, tenant_id: str) -> OutcomePolicy:
    return domain.check_policy(policy_row(uow, tenant_id).policy)


def set_policy(uow: UnitOfWork, tenant_id: str, changes: dict[str, Any], *, actor: str) -> PolicyRow:
    """Change some fields of the labelling policy (the rest keep their value); audited. Loans already labelled
    keep their label."""
    row = uow.session.get(PolicyRow, tenant_id, with_for_update=True)
    before = None if row is None else dict(row.policy)
    policy = domain.check_policy(changes, base=before).to_json()
    now = uow.clock.now()
    if row is None:
        row = PolicyRow(tenant_id=tenant_id, policy=policy, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.policy, row.updated_by, row.updated_at = policy, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.outcome_policy.updated",
                 object_type="credit_outcome_policy", object_id=tenant_id, before=before, after=policy)
    return row


# ---------------------------------------------------------------------------------------------- labelling


def _insert_ignoring_duplicates(uow: UnitOfWork, rows: list[dict[str, Any]]) -> int:
    if uow.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    # RETURNING counts what was inserted on both backends (a multi-row rowcount is not reliable on psycopg).
    statement = dialect_insert(LoanOutcome).values(rows).on_conflict_do_nothing(
        index_elements=["tenant_id", "loan_id"]).returning(LoanOutcome.id)
    return len(uow.session.execute(statement).all())


def _relabel_recovered(uow: UnitOfWork, tenant_id: str, as_of: date, policy: OutcomePolicy) -> int:
    found = uow.session.execute(
        select(LoanOutcome.id, LoanAccount.written_off_amount, LoanAccount.recovered_amount, LoanAccount.closed_on)
        .join(LoanAccount, LoanAccount.loan_id == LoanOutcome.loan_id)
        .where(LoanOutcome.tenant_id == tenant_id, LoanOutcome.label == OutcomeLabel.DEFAULT.value,
               LoanAccount.state == "written_off", LoanAccount.written_off_amount > 0,
               LoanAccount.recovered_amount * domain.PPM >= LoanAccount.written_off_amount * policy.recovery_ppm)
        .order_by(LoanOutcome.id)).all()
    now = uow.clock.now()
    changes = [{"id": outcome_id, "label": OutcomeLabel.RECOVERED.value, "bad": False, "recovered_on": as_of,
                "closed_on": closed_on, "written_off_amount": written_off, "recovered_amount": recovered,
                "updated_at": now}
               for outcome_id, written_off, recovered, closed_on in found
               if domain.is_recovered(written_off, recovered, policy)]
    if changes:
        uow.session.execute(update(LoanOutcome), changes)
    return len(changes)


def label_outcomes(uow: UnitOfWork, tenant_id: str, as_of: date, *, limit: int = LABEL_BATCH) -> int:
    """Label up to ``limit`` loans whose outcome became known by ``as_of`` and relabel recovered defaults; how
    many outcomes were written (0: nothing left to label)."""
    if not isinstance(as_of, date) or isinstance(as_of, datetime):
        raise InvalidRequest("as_of is a date.", code="invalid_date", param="as_of")
    # A date ahead would end performance windows early and fix labels for good; a day's slack covers business
    # dates of time zones ahead of UTC.
    if as_of > uow.clock.now().date() + timedelta(days=1):
        raise InvalidRequest("as_of is not in the future.", code="as_of_in_future", param="as_of")
    if not 1 <= limit <= LABEL_BATCH:
        raise InvalidRequest(f"limit is 1-{LABEL_BATCH}.", code="invalid_limit", param="limit")
    policy = get_policy(uow, tenant_id)
    written = _relabel_recovered(uow, tenant_id, as_of, policy)
    window_start = as_of - timedelta(days=policy.window_days)
    labelled = exists().where(LoanOutcome.tenant_id == tenant_id, LoanOutcome.loan_id == LoanAccount.loan_id)
    query = (select(LoanAccount.loan_id, Loan.application_id, LoanAccount.applicant_id, LoanAccount.product_id,
                    LoanApplication.score_id, LoanAccount.state, LoanAccount.max_dpd, LoanProduct.grace_days,
                    LoanAccount.written_off_amount, LoanAccount.recovered_amount, LoanAccount.currency,
                    LoanAccount.principal_amount, LoanAccount.disbursed_on, LoanAccount.origination_month,
                    LoanAccount.closed_on)
             .join(Loan, Loan.id == LoanAccount.loan_id)
             .join(LoanApplication, LoanApplication.id == Loan.application_id)
             .join(LoanProduct, LoanProduct.id == LoanAccount.product_id)
             .where(LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= as_of, ~labelled,
                    or_(LoanAccount.state.in_(("paid_off", "written_off")),
                        LoanAccount.max_dpd >= policy.default_dpd, LoanAccount.disbursed_on <= window_start))
             .order_by(LoanAccount.loan_id).limit(limit))
    now = uow.clock.now()
    rows: list[dict[str, Any]] = []
    for (loan_id, application_id, applicant_id, product_id, score_id, state, max_dpd, grace_days, written_off,
         recovered, currency, principal, disbursed_on, month, closed_on) in uow.session.execute(query):
        label = domain.label_for(state=state, max_dpd=max_dpd, grace_days=grace_days,
                                 written_off_amount=written_off, recovered_amount=recovered,
                                 window_ended=disbursed_on <= window_start, policy=policy)
        if label is None:  # the query and label_for select the same accounts; kept as a guard
            continue
        rows.append({
            "id": uow.ids.new("loan_outcome"), "tenant_id": tenant_id, "loan_id": loan_id,
            "application_id": application_id, "applicant_id": applicant_id, "product_id": product_id,
            "score_id": score_id, "label": label.value, "bad": label is OutcomeLabel.DEFAULT, "currency": currency,
            "principal_amount": principal, "disbursed_on": disbursed_on, "origination_month": month,
            "window_ends_on": disbursed_on + timedelta(days=policy.window_days), "labelled_on": as_of,
            "closed_on": closed_on, "recovered_on": as_of if label is OutcomeLabel.RECOVERED else None,
            "max_dpd": max_dpd, "grace_days": grace_days, "default_dpd": policy.default_dpd,
            "written_off_amount": written_off, "recovered_amount": recovered, "created_at": now, "updated_at": now})
    if rows:
        written += _insert_ignoring_duplicates(uow, rows)
    return written


def get_outcome(uow: UnitOfWork, tenant_id: str, outcome_id: str) -> LoanOutcome:
    row = uow.session.scalar(select(LoanOutcome).where(LoanOutcome.tenant_id == tenant_id,
                                                       LoanOutcome.id == outcome_id))
    if row is None:
        raise NotFound(f"No such loan outcome: {outcome_id[:40]}.", code="loan_outcome_not_found",
                       param="outcome_id")
    return row


def list_outcomes(uow: UnitOfWork, tenant_id: str, *, label: str | None = None, bad: bool | None = None,
                  loan_id: str | None = None, after: str | None = None, limit: int = 50) -> list[LoanOutcome]:
    """Up to ``limit + 1`` outcomes in id order."""
    query = select(LoanOutcome).where(LoanOutcome.tenant_id == tenant_id)
    if label is not None:
        if label not in {x.value for x in domain.LABELS}:
            raise InvalidRequest("label is on_time, late, default or recovered.", code="invalid_label", param="label")
        query = query.where(LoanOutcome.label == label)
    if bad is not None:
        query = query.where(LoanOutcome.bad == bad)
    if loan_id:
        query = query.where(LoanOutcome.loan_id == loan_id)
    if after:
        query = query.where(LoanOutcome.id > after)
    return list(uow.session.scalars(query.order_by(LoanOutcome.id).limit(limit + 1)))


def summary(uow: UnitOfWork, tenant_id: str) -> dict[str, int]:
    """Outcomes by label (every label, zero where none)."""
    counts = dict(uow.session.execute(select(LoanOutcome.label, func.count()).where(
        LoanOutcome.tenant_id == tenant_id).group_by(LoanOutcome.label)).all())
    return {label.value: int(counts.get(label.value, 0)) for label in domain.LABELS}


# ---------------------------------------------------------------------------------------------- data set


@dataclass(frozen=True, slots=True)
class LabelledLoan:
    loan_id: str
    disbursed_on: date
    bad: bool
    features: dict[str, Any]


def labelled_loans(uow: UnitOfWork, tenant_id: str, *, originated_after: date | None = None,
                   originated_before: date | None = None) -> list[LabelledLoan]:
    """Labelled loans scored at application (``originated_after < disbursed_on < originated_before``), oldest
    first, with the features their score read."""
    query = (select(LoanOutcome.loan_id, LoanOutcome.disbursed_on, LoanOutcome.bad, CreditScore.features)
             .join(CreditScore, and_(CreditScore.id == LoanOutcome.score_id, CreditScore.tenant_id == tenant_id))
             .where(LoanOutcome.tenant_id == tenant_id))
    if originated_after is not None:
        query = query.where(LoanOutcome.disbursed_on > originated_after)
    if originated_before is not None:
        query = query.where(LoanOutcome.disbursed_on < originated_before)
    out: list[LabelledLoan] = []
    for loan_id, disbursed_on, bad, features in uow.session.execute(
            query.order_by(LoanOutcome.disbursed_on, LoanOutcome.loan_id)):
        if not features:  # a stand-in score without features teaches nothing
            continue
        out.append(LabelledLoan(loan_id, disbursed_on, bool(bad),
                                {name: features.get(name) for name in PLATFORM_FEATURE_NAMES}))
    return out


def dataset_of(loans: Sequence[LabelledLoan]) -> scorecard.Dataset:
    return scorecard.Dataset(DATASET_NAME, scorecard.frame_of([loan.features for loan in loans], PLATFORM_FEATURES),
                             np.asarray([1 if loan.bad else 0 for loan in loans], dtype=np.int8), PLATFORM_FEATURES)


def portfolio_dataset(uow: UnitOfWork, tenant_id: str, *, originated_after: date | None = None,
                      originated_before: date | None = None) -> scorecard.Dataset:
    """The labelled loans as a training set: each loan's application features and its ``bad`` label."""
    return dataset_of(labelled_loans(uow, tenant_id, originated_after=originated_after,
                                     originated_before=originated_before))


# ---------------------------------------------------------------------------------------------- comparison


def _applicable(row: CreditModel, param: str) -> scorecard.CompiledModel:
    model = scoring.compile_row(row)
    unknown = [name for name in model.names if name not in PLATFORM_FEATURE_NAMES]
    if unknown:
        raise Conflict(f"Model {row.id} reads features loans do not have ({', '.join(unknown[:3])}): it was trained "
                       "on another data set.", code="model_not_applicable", param=param)
    return model


def _against(uow: UnitOfWork, tenant_id: str, candidate: CreditModel, against: str) -> CreditModel:
    if against == "champion":
        found = registry.active(uow, tenant_id, candidate.name).champion
        if found is None:
            raise Conflict(f"No champion model named {candidate.name!r} to compare with.", code="no_champion_model",
                           param="against")
        other = registry.get_model(uow, tenant_id, found[0])
    else:
        try:
            other = registry.get_model(uow, tenant_id, against)
        except NotFound:
            raise NotFound(f"No such credit model: {against[:40]}.", code="credit_model_not_found",
                           param="against") from None
    if other.id == candidate.id:
        raise InvalidRequest("A model is compared with another model, not itself.", code="same_model",
                             param="against")
    return other


def _enough(loans: Sequence[LabelledLoan]) -> bool:
    bad = sum(1 for loan in loans if loan.bad)
    return len(loans) >= MIN_HOLDOUT and bad >= MIN_CLASS and len(loans) - bad >= MIN_CLASS


def _holdout(uow: UnitOfWork, tenant_id: str, candidate: CreditModel) -> tuple[list[LabelledLoan], dict[str, Any]]:
    after = candidate.data_to.date() if candidate.data_to is not None else None
    if after is not None:
        recent = labelled_loans(uow, tenant_id, originated_after=after)
        if _enough(recent):
            return recent, {"kind": "out_of_time", "originated_after": after.isoformat()}
    loans = labelled_loans(uow, tenant_id)
    if not _enough(loans):
        bad = sum(1 for loan in loans if loan.bad)
        raise Conflict(f"Comparing needs at least {MIN_HOLDOUT} labelled, scored loans with {MIN_CLASS} good and "
                       f"{MIN_CLASS} bad ones; there are {len(loans)} with {bad} bad.", code="not_enough_outcomes",
                       param="model_id")
    return loans, {"kind": "all_labelled", "originated_after": None}


def _performance(row: CreditModel, model: scorecard.CompiledModel, loans: Sequence[LabelledLoan],
                 target: np.ndarray, reject_below: int) -> tuple[dict[str, Any], list[int]]:
    points = [model.points(loan.features) for loan in loans]
    scores = [score_of(p) for p in points]
    probability = np.asarray([model.scaling.probability_of_default(p) for p in points])
    approved = sum(1 for s in scores if s >= reject_below)
    return ({"model_id": row.id, "name": row.name, "version": row.version, "kind": row.kind, "status": row.status,
             **scorecard.discrimination(target, probability), "mean_score": round(float(np.mean(scores)), 2),
             "approval_rate": round(approved / len(scores), 4)}, scores)


def compare(uow: UnitOfWork, tenant_id: str, candidate_model_id: str, *, against: str = "champion",
            record: bool = True, actor: str = "system") -> dict[str, Any]:
    """Score the holdout with the candidate and ``against`` (the champion of its name, or a model id); with
    ``record``, the result is stored in the candidate's metrics (``comparison``) and audited."""
    candidate = registry.get_model(uow, tenant_id, candidate_model_id, lock=record)
    other = _against(uow, tenant_id, candidate, against)
    candidate_model = _applicable(candidate, "model_id")
    other_model = _applicable(other, "against")
    loans, holdout = _holdout(uow, tenant_id, candidate)
    target = np.asarray([1 if loan.bad else 0 for loan in loans], dtype=np.int8)
    reject_below = min(band.min_score for band in credit.get_bands(uow, tenant_id))
    mine, candidate_scores = _performance(candidate, candidate_model, loans, target, reject_below)
    theirs, other_scores = _performance(other, other_model, loans, target, reject_below)
    stability = drift.compare(drift.reference([float(s) for s in other_scores]),
                              [float(s) for s in candidate_scores])
    swaps = domain.swap_set(other_scores, candidate_scores, list(target), reject_below)
    recommendation, reasons = domain.recommend(mine, theirs, swaps)
    bad = int(target.sum())
    result: dict[str, Any] = {
        "object": "credit_model_comparison", "candidate": mine, "against": theirs,
        "holdout": {**holdout, "loans": len(loans), "bad": bad, "bad_rate": round(bad / len(loans), 4),
                    "first_disbursed_on": loans[0].disbursed_on.isoformat(),
                    "last_disbursed_on": loans[-1].disbursed_on.isoformat()},
        "psi": round(float(stability["psi"]), 4), "psi_level": stability["level"], "reject_below": reject_below,
        "swap_set": swaps, "recommendation": recommendation.value, "reasons": reasons,
        "compared_at": uow.clock.now().isoformat()}
    if record:
        candidate.metrics = {**candidate.metrics, "comparison": result}
        uow.session.flush()
        audit.record(uow, tenant_id, actor=actor, action="credit.model.compared", object_type="credit_model",
                     object_id=candidate.id, after={
                         "against": other.id, "recommendation": recommendation.value, "loans": len(loans),
                         "auc": [mine["auc"], theirs["auc"]]})
    return result


def get_comparison(uow: UnitOfWork, tenant_id: str, model_id: str) -> dict[str, Any]:
    """The last comparison recorded for the model."""
    row = registry.get_model(uow, tenant_id, model_id)
    found = row.metrics.get("comparison")
    if not found:
        raise NotFound("This model has not been compared yet.", code="comparison_not_found", param="model_id")
    return dict(found)


# ---------------------------------------------------------------------------------------------- retraining


@dataclass
class Retrained:
    name: str
    version: int
    scorecard_id: str
    gbm_id: str
    training: dict[str, Any]
    #: Each new model's comparison with the champion, by kind; None without a champion to compare with.
    comparisons: dict[str, dict[str, Any]] | None

    def to_json(self) -> dict[str, Any]:
        return {"object": "credit_retraining", "name": self.name, "version": self.version,
                "scorecard_id": self.scorecard_id, "gbm_id": self.gbm_id, "training": self.training,
                "comparisons": self.comparisons}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _split(loans: list[LabelledLoan], holdout_share: float) -> tuple[list[LabelledLoan], date | None]:
    """The loans to train on: all but the most recent ``holdout_share``, cut between two disbursement dates so
    that no day is on both sides."""
    keep = len(loans) - math.floor(len(loans) * holdout_share)
    if keep >= len(loans):
        return loans, None
    cutoff = loans[keep].disbursed_on
    return [loan for loan in loans if loan.disbursed_on < cutoff], cutoff


def retrain_from_outcomes(db: Database, tenant_id: str, *, name: str = DEFAULT_MODEL_NAME,
                          holdout_share: float = DEFAULT_HOLDOUT_SHARE, seed: int = 1,
                          rounds: int = scorecard.DEFAULT_ROUNDS, min_iv: float = scorecard.DEFAULT_MIN_IV,
                          test_share: float = scorecard.DEFAULT_TEST_SHARE, actor: str,
                          progress: scorecard.Progress = scorecard._quiet,
                          finish: Callable[[UnitOfWork, Retrained], None] | None = None) -> Retrained:
    """Train on the labelled loans but the most recent ``holdout_share``, register both models as drafts of the
    next version of ``name`` and compare each with the champion on the loans kept out. ``finish`` runs in the
    registering transaction just before it commits."""
    from finloop.credit.domain import check_model_name

    name = check_model_name(name)
    if isinstance(holdout_share, bool) or not 0 <= holdout_share <= 0.5:
        raise InvalidRequest("holdout_share is within [0, 0.5].", code="invalid_holdout_share",
                             param="holdout_share")
    with db.uow(read_only=True) as uow:
        found = registry.active(uow, tenant_id, name).champion
        if found is not None:  # refuse before training, not after: a champion of another data set cannot compare
            _applicable(registry.get_model(uow, tenant_id, found[0]), "name")
        loans = labelled_loans(uow, tenant_id)
    training, cutoff = _split(loans, holdout_share)
    if not training:
        raise InvalidRequest("Training needs at least 50 rows with 10 defaults and 10 non-defaults.",
                             code="no_training_data", param="dataset")
    trained = scorecard.train(dataset_of(training), seed=seed, rounds=rounds, min_iv=min_iv, test_share=test_share,
                              progress=progress)
    summary_ = {"loans": len(training), "bad": sum(1 for loan in training if loan.bad),
                "first_disbursed_on": training[0].disbursed_on.isoformat(),
                "last_disbursed_on": training[-1].disbursed_on.isoformat(),
                "held_out_from": cutoff.isoformat() if cutoff else None, "split": trained.split,
                "scorecard": {k: trained.scorecard.metrics[k] for k in ("auc", "ks", "gini")},
                "gbm": {k: trained.gbm.metrics[k] for k in ("auc", "ks", "gini")}}
    with db.uow() as uow:
        card, gbm = registry.register(uow, tenant_id, trained, name=name, actor=actor,
                                      data_from=_midnight(training[0].disbursed_on),
                                      data_to=_midnight(training[-1].disbursed_on))
        comparisons: dict[str, dict[str, Any]] | None = None
        if registry.active(uow, tenant_id, name).champion is not None:
            comparisons = {row.kind: compare(uow, tenant_id, row.id, actor=actor) for row in (card, gbm)}
        result = Retrained(name, card.version, card.id, gbm.id, summary_, comparisons)
        if finish is not None:
            finish(uow, result)
        uow.commit()
    return result
