"""Credit HTTP endpoints: applicants, consents, bureau pulls, scores, the model registry and the rating policy.

Reads need any key of the tenant. Creating applicants, recording and revoking consents, pulling bureau
reports and scoring need ``credit.score``; promoting and retiring models and changing the rating bands need
``credit.configure``. Personal data is returned masked only. Every POST takes an Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.core.errors import Conflict
from finloop.credit import flows, registry, scoring
from finloop.credit import service as credit
from finloop.credit.domain import ModelKind, ModelStatus, PartyKind
from finloop.credit.schemas import (
    ApplicantCreate,
    ApplicantRead,
    BureauPull,
    BureauReportRead,
    ConsentCreate,
    ConsentRead,
    ModelPromote,
    ModelRead,
    RatingPolicyRead,
    RatingPolicyWrite,
    ScorecardRead,
    ScoreCreate,
    ScoreRead,
    StabilityRead,
    read_applicant,
    read_consent,
    read_model,
    read_policy,
    read_report,
    read_score,
    read_scorecard,
)
from finloop.db.uow import UnitOfWork

router = APIRouter(tags=["credit"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
SCORE = "credit.score"
CONFIGURE = "credit.configure"


# ---------------------------------------------------------------------------------------------- applicants


@router.post("/credit/applicants", response_model=ApplicantRead, status_code=201,
             summary="Record a customer or merchant as a credit applicant (personal data is encrypted)")
def create_applicant(body: ApplicantCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> ApplicantRead:
        row = credit.create_applicant(
            uow, writer.tenant_id, party_kind=body.party_kind.value, party_id=body.party_id,
            declared_income_amount=body.declared_income_amount, currency=body.currency,
            employment=body.employment.value, national_id=body.national_id, phone=body.phone,
            bank_account=body.bank_account, actor=writer.principal.actor)
        return read_applicant(row, credit.duplicates(uow, writer.tenant_id, row))

    return writer.run(work, permission=SCORE, status_code=201)


@router.get("/credit/applicants", response_model=Page[ApplicantRead], summary="List applicants")
def list_applicants(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                    party_kind: Annotated[PartyKind | None, Query()] = None,
                    party_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[ApplicantRead]:
    return reader.run(lambda uow: page(credit.list_applicants(
        uow, reader.tenant_id, party_kind=party_kind.value if party_kind else None, party_id=party_id,
        after=starting_after, limit=limit), limit, read_applicant, lambda a: a.id))


@router.get("/credit/applicants/{applicant_id}", response_model=ApplicantRead, summary="Get an applicant (masked)")
def get_applicant(applicant_id: Id, reader: CurrentReader) -> ApplicantRead:
    def work(uow: UnitOfWork) -> ApplicantRead:
        row = credit.get_applicant(uow, reader.tenant_id, applicant_id)
        return read_applicant(row, credit.duplicates(uow, reader.tenant_id, row))

    return reader.run(work)


# ---------------------------------------------------------------------------------------------- consents


@router.post("/credit/applicants/{applicant_id}/consents", response_model=ConsentRead, status_code=201,
             summary="Record the applicant's consent (a bureau pull needs one covering bureau_report)")
def grant_consent(applicant_id: Id, body: ConsentCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> ConsentRead:
        row = credit.grant_consent(uow, writer.tenant_id, applicant_id, scope=[s.value for s in body.scope],
                                   purpose=body.purpose.value, channel=body.channel.value, evidence=body.evidence,
                                   given_at=body.given_at, expires_at=body.expires_at, actor=writer.principal.actor)
        return read_consent(row, uow.clock.now())

    return writer.run(work, permission=SCORE, status_code=201)


@router.get("/credit/applicants/{applicant_id}/consents", response_model=Page[ConsentRead],
            summary="List an applicant's consents")
def list_consents(applicant_id: Id, reader: CurrentReader, limit: Limit = 50,
                  starting_after: Cursor = None) -> Page[ConsentRead]:
    def work(uow: UnitOfWork) -> Page[ConsentRead]:
        now = uow.clock.now()
        return page(credit.list_consents(uow, reader.tenant_id, applicant_id, after=starting_after, limit=limit),
                    limit, lambda c: read_consent(c, now), lambda c: c.id)

    return reader.run(work)


@router.post("/credit/consents/{consent_id}/revoke", response_model=ConsentRead, summary="Revoke a consent")
def revoke_consent(consent_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_consent(credit.revoke_consent(uow, writer.tenant_id, consent_id,
                                                                     actor=writer.principal.actor),
                                               uow.clock.now()), permission=SCORE)


# ---------------------------------------------------------------------------------------------- bureau reports


@router.post("/credit/applicants/{applicant_id}/bureau-reports", response_model=BureauReportRead, status_code=201,
             summary="Pull a credit bureau report (needs a valid consent; recorded, called, then stored)")
def pull_report(applicant_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                body: BureauPull | None = None):
    provider = (body or BureauPull()).provider
    pulled: list[str] = []

    def flow() -> None:
        pulled.append(flows.pull_report(writer.db, writer.tenant_id, applicant_id, provider=provider,
                                        actor=writer.principal.actor))

    return writer.run_flow(flow, lambda uow: read_report(credit.get_report(uow, writer.tenant_id, pulled[0])),
                           permission=SCORE, status_code=201)


@router.get("/credit/bureau-reports", response_model=Page[BureauReportRead], summary="List bureau reports")
def list_reports(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 applicant_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[BureauReportRead]:
    return reader.run(lambda uow: page(credit.list_reports(uow, reader.tenant_id, applicant_id=applicant_id,
                                                           after=starting_after, limit=limit),
                                       limit, read_report, lambda r: r.id))


@router.get("/credit/bureau-reports/{report_id}", response_model=BureauReportRead, summary="Get a bureau report")
def get_report(report_id: Id, reader: CurrentReader) -> BureauReportRead:
    return reader.run(lambda uow: read_report(credit.get_report(uow, reader.tenant_id, report_id)))


# ---------------------------------------------------------------------------------------------- scores


@router.post("/credit/applicants/{applicant_id}/scores", response_model=ScoreRead, status_code=201,
             summary="Score the applicant now with the champion model: score, rating, reasons, model version")
def score_applicant(applicant_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                    body: ScoreCreate | None = None):
    model_name = (body or ScoreCreate()).model_name
    return writer.run(lambda uow: read_score(scoring.score_applicant(uow, writer.tenant_id, applicant_id,
                                                                     model_name=model_name)),
                      permission=SCORE, status_code=201)


@router.get("/credit/scores", response_model=Page[ScoreRead], summary="List scores")
def list_scores(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                applicant_id: Annotated[Line | None, Query(max_length=40)] = None, month: Month = None,
                model_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[ScoreRead]:
    return reader.run(lambda uow: page(scoring.list_scores(uow, reader.tenant_id, applicant_id=applicant_id,
                                                           month=month, model_id=model_id, after=starting_after,
                                                           limit=limit), limit, read_score, lambda s: s.id))


@router.get("/credit/scores/{score_id}", response_model=ScoreRead, summary="Get a score")
def get_score(score_id: Id, reader: CurrentReader) -> ScoreRead:
    return reader.run(lambda uow: read_score(scoring.get_score(uow, reader.tenant_id, score_id)))


# ---------------------------------------------------------------------------------------------- models


@router.get("/credit/models", response_model=Page[ModelRead], summary="List credit models")
def list_models(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                name: Annotated[Line | None, Query(max_length=40)] = None,
                status: Annotated[ModelStatus | None, Query()] = None,
                kind: Annotated[ModelKind | None, Query()] = None) -> Page[ModelRead]:
    return reader.run(lambda uow: page(registry.list_models(
        uow, reader.tenant_id, name=name, status=status.value if status else None, kind=kind.value if kind else None,
        after=starting_after, limit=limit), limit, read_model, lambda m: m.id))


@router.get("/credit/models/{model_id}", response_model=ModelRead, summary="Get a model and its held-out metrics")
def get_model(model_id: Id, reader: CurrentReader) -> ModelRead:
    return reader.run(lambda uow: read_model(registry.get_model(uow, reader.tenant_id, model_id)))


@router.get("/credit/models/{model_id}/scorecard", response_model=ScorecardRead,
            summary="A scorecard's bins and points")
def get_scorecard(model_id: Id, reader: CurrentReader) -> ScorecardRead:
    def work(uow: UnitOfWork) -> ScorecardRead:
        row = registry.get_model(uow, reader.tenant_id, model_id)
        if row.kind != ModelKind.SCORECARD.value:
            raise Conflict("Only a scorecard has a points table.", code="not_a_scorecard", param="model_id")
        return read_scorecard(row)

    return reader.run(work)


@router.get("/credit/models/{model_id}/stability", response_model=StabilityRead,
            summary="Population stability index of the model's scores against its training scores")
def get_stability(model_id: Id, reader: CurrentReader, month: Month = None,
                  days: Annotated[int, Query(ge=1, le=366)] = 30) -> StabilityRead:
    return reader.run(lambda uow: StabilityRead.model_validate(scoring.population_stability(
        uow, reader.tenant_id, model_id, month=month, days=days)))


@router.post("/credit/models/{model_id}/promote", response_model=ModelRead,
             summary="Make a model its name's champion or challenger (the previous one retires)")
def promote_model(model_id: Id, body: ModelPromote, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_model(registry.promote(uow, writer.tenant_id, model_id, to=body.to,
                                                              actor=writer.principal.actor)), permission=CONFIGURE)


@router.post("/credit/models/{model_id}/retire", response_model=ModelRead, summary="Retire a model")
def retire_model(model_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_model(registry.retire(uow, writer.tenant_id, model_id,
                                                             actor=writer.principal.actor)), permission=CONFIGURE)


# ---------------------------------------------------------------------------------------------- rating policy


@router.get("/credit/rating-policy", response_model=RatingPolicyRead, summary="The score bands of ratings A-D")
def get_rating_policy(reader: CurrentReader) -> RatingPolicyRead:
    return reader.run(lambda uow: read_policy(credit.get_policy(uow, reader.tenant_id)))


@router.put("/credit/rating-policy", response_model=RatingPolicyRead, summary="Set the score bands of ratings A-D")
def put_rating_policy(body: RatingPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_policy(credit.set_bands(
        uow, writer.tenant_id, [b.model_dump() for b in body.bands], actor=writer.principal.actor)),
        permission=CONFIGURE)
