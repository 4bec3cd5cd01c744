"""Risk ml HTTP endpoints: the model registry (reads: any key; promote and retire: ``risk.configure``),
drift of a model, and the explanation of a decision's model scores."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.risk.ml import drift, service
from finloop.risk.ml.schemas import DriftRead, ExplanationRead, ModelRead, ModelStatus, read_model

router = APIRouter(tags=["risk"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
CONFIGURE = "risk.configure"


@router.get("/risk/models", response_model=Page[ModelRead], summary="List anti-fraud models")
def list_models(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                status: Annotated[ModelStatus | None, Query()] = None,
                name: Annotated[Line | None, Query(max_length=40)] = None) -> Page[ModelRead]:
    return reader.run(lambda uow: page(service.list_models(
        uow, reader.tenant_id, name=name, status=status.value if status else None, after=starting_after,
        limit=limit + 1), limit, read_model, lambda m: m.id))


@router.get("/risk/models/{model_id}", response_model=ModelRead, summary="Get a model")
def get_model(model_id: Id, reader: CurrentReader) -> ModelRead:
    return reader.run(lambda uow: read_model(service.get_model(uow, reader.tenant_id, model_id)))


@router.post("/risk/models/{model_id}/promote", response_model=ModelRead,
             summary="Make a model the champion (the previous champion retires)")
def promote(model_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_model(service.promote(uow, writer.tenant_id, model_id,
                                                             actor=writer.principal.actor)), permission=CONFIGURE)


@router.post("/risk/models/{model_id}/retire", response_model=ModelRead, summary="Retire a model")
def retire(model_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_model(service.retire(uow, writer.tenant_id, model_id,
                                                            actor=writer.principal.actor)), permission=CONFIGURE)


@router.get("/risk/models/{model_id}/drift", response_model=DriftRead,
            summary="Population stability index of the score and key features, training vs recent decisions")
def get_drift(model_id: Id, reader: CurrentReader,
              days: Annotated[int, Query(ge=1, le=366)] = 7) -> DriftRead:
    return reader.run(lambda uow: DriftRead.model_validate(drift.compute(uow, reader.tenant_id, model_id,
                                                                         days=days)))


@router.get("/risk/decisions/{decision_id}/explanation", response_model=ExplanationRead,
            summary="Top feature contributions of a decision's model scores")
def explain(decision_id: Id, reader: CurrentReader) -> ExplanationRead:
    return reader.run(lambda uow: ExplanationRead.model_validate(
        service.explain_decision(uow, reader.tenant_id, decision_id)))
