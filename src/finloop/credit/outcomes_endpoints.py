"""Loan outcome endpoints: labelled outcomes, the labelling policy, retraining on outcomes and the comparison of
a model with the champion.

Reads need any key of the tenant. Labelling, changing the policy, retraining and comparing (which records the
result on the model) need ``credit.configure``. Every POST takes an Idempotency-Key. Promotion stays with
``POST /v1/credit/models/{id}/promote``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.credit.outcomes import service as outcomes
from finloop.credit.outcomes.domain import OutcomeLabel
from finloop.credit.outcomes.schemas import (
    Compare,
    ComparisonRead,
    LabelRun,
    LabelRunRead,
    OutcomePolicyRead,
    OutcomePolicyWrite,
    OutcomeRead,
    Retrain,
    RetrainRead,
    read_outcome,
    read_outcome_policy,
)
from finloop.db.uow import UnitOfWork

router = APIRouter(prefix="/credit", tags=["credit"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
CONFIGURE = "credit.configure"


@router.get("/outcomes", response_model=Page[OutcomeRead], summary="List labelled loan outcomes")
def list_outcomes(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  label: Annotated[OutcomeLabel | None, Query()] = None,
                  bad: Annotated[bool | None, Query()] = None,
                  loan_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[OutcomeRead]:
    return reader.run(lambda uow: page(outcomes.list_outcomes(
        uow, reader.tenant_id, label=label.value if label else None, bad=bad, loan_id=loan_id, after=starting_after,
        limit=limit), limit, read_outcome, lambda o: o.id))


@router.post("/outcomes/label", response_model=LabelRunRead,
             summary="Label every loan whose outcome became known (a rerun adds nothing)")
def label_outcomes(writer: CurrentWriter, body: LabelRun | None = None):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> LabelRunRead:
        as_of = (body.as_of if body else None) or uow.clock.now().date()
        labelled = 0
        while True:
            done = outcomes.label_outcomes(uow, writer.tenant_id, as_of)
            labelled += done
            if done == 0:
                break
        return LabelRunRead(as_of=as_of, labelled=labelled, outcomes=outcomes.summary(uow, writer.tenant_id))

    return writer.run(work, permission=CONFIGURE)


@router.get("/outcomes/policy", response_model=OutcomePolicyRead, summary="The labelling policy")
def get_outcome_policy(reader: CurrentReader) -> OutcomePolicyRead:
    return reader.run(lambda uow: read_outcome_policy(outcomes.policy_row(uow, reader.tenant_id)))


@router.put("/outcomes/policy", response_model=OutcomePolicyRead,
            summary="Change fields of the labelling policy (loans labelled already keep their label)")
def put_outcome_policy(body: OutcomePolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_outcome_policy(outcomes.set_policy(
        uow, writer.tenant_id, body.model_dump(mode="json", exclude_unset=True), actor=writer.principal.actor)),
        permission=CONFIGURE)


@router.get("/outcomes/{outcome_id}", response_model=OutcomeRead, summary="Get a loan outcome")
def get_outcome(outcome_id: Id, reader: CurrentReader) -> OutcomeRead:
    return reader.run(lambda uow: read_outcome(outcomes.get_outcome(uow, reader.tenant_id, outcome_id)))


@router.post("/models/retrain-from-outcomes", response_model=RetrainRead, status_code=201,
             summary="Train on labelled loans, register both models as drafts, compare each with the champion")
def retrain(writer: CurrentWriter, body: Retrain | None = None):  # type: ignore[no-untyped-def]
    given = body or Retrain()
    done: list[outcomes.Retrained] = []

    def flow() -> None:
        # Training runs outside any transaction; the answer is stored with the registration that commits.
        done.append(outcomes.retrain_from_outcomes(
            writer.db, writer.tenant_id, name=given.name, holdout_share=float(Decimal(given.holdout_share)),
            seed=given.seed, rounds=given.rounds, min_iv=float(Decimal(given.min_iv)),
            test_share=float(Decimal(given.test_share)), actor=writer.principal.actor,
            finish=lambda uow, result: writer.answer_in(uow, RetrainRead.model_validate(result.to_json()),
                                                        status_code=201)))

    return writer.run_flow(flow, lambda uow: RetrainRead.model_validate(done[0].to_json()), status_code=201,
                           permission=CONFIGURE)


@router.post("/models/{model_id}/compare", response_model=ComparisonRead,
             summary="Compare a model with the champion (or another model) on labelled loans; recorded on it")
def compare_model(model_id: Id, writer: CurrentWriter, body: Compare | None = None):  # type: ignore[no-untyped-def]
    against = (body or Compare()).against
    return writer.run(lambda uow: ComparisonRead.model_validate(outcomes.compare(
        uow, writer.tenant_id, model_id, against=against, actor=writer.principal.actor)), permission=CONFIGURE)


@router.get("/models/{model_id}/comparison", response_model=ComparisonRead,
            summary="The last comparison recorded for a model")
def get_comparison(model_id: Id, reader: CurrentReader) -> ComparisonRead:
    return reader.run(lambda uow: ComparisonRead.model_validate(outcomes.get_comparison(
        uow, reader.tenant_id, model_id)))
