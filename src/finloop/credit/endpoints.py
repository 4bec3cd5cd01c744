"""Credit HTTP endpoints: applicants, consents, bureau pulls, scores, the model registry and the rating policy;
loan products, schedule previews, the limit policy and credit lines; loan applications, their contracts, the
application figures and the automatic review's policy; funding sources, loans and their disbursement.

Reads need any key of the tenant. Creating applicants, recording and revoking consents, pulling bureau
reports, scoring, previewing schedules, opening and reviewing credit lines need ``credit.score``; promoting
and retiring models, changing the rating bands, configuring products and the limit policy, and adjusting,
freezing or unfreezing a line by hand need ``credit.configure``. Submitting, cancelling and signing
applications need ``credit.score``; changing the application policy ``credit.configure``. Configuring funding
sources and the disbursement policy (automatic or not) needs ``credit.configure``; disbursing loans (one, by
application, or a batch) and querying a disbursement in flight ``credit.score``. Personal data is returned
masked only. Every POST takes an Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter, Writer
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Instant, Line
from finloop.core.errors import Conflict
from finloop.credit import applications, contracts, disbursement, flows, funding, limits, products, registry, scoring
from finloop.credit import service as credit
from finloop.credit.domain import ApplicationStatus, LoanStatus, ModelKind, ModelStatus, PartyKind
from finloop.credit.models import CreditLine
from finloop.credit.products import ProductKind, ProductStatus
from finloop.credit.schemas import (
    PRICING_FIELDS,
    ApplicantCreate,
    ApplicantRead,
    ApplicationCreate,
    ApplicationFiguresRead,
    ApplicationPolicyRead,
    ApplicationPolicyWrite,
    ApplicationRead,
    AvailabilityRead,
    BatchDisburse,
    BatchItemRead,
    BatchRead,
    BureauPull,
    BureauReportRead,
    ConsentCreate,
    ConsentRead,
    ContractAccept,
    ContractRead,
    CreditLineCreate,
    CreditLineRead,
    DisburseBody,
    DisbursementPolicyRead,
    DisbursementPolicyWrite,
    FundingSourceCreate,
    FundingSourceRead,
    FundingSourceUpdate,
    LimitChangeRead,
    LimitPolicyRead,
    LimitPolicyWrite,
    LineAdjust,
    LineNote,
    LoanCreate,
    LoanRead,
    ModelPromote,
    ModelRead,
    ProductCreate,
    ProductRead,
    ProductRevise,
    RatingPolicyRead,
    RatingPolicyWrite,
    SchedulePreview,
    ScheduleRead,
    ScorecardRead,
    ScoreCreate,
    ScoreRead,
    StabilityRead,
    read_applicant,
    read_application,
    read_application_policy,
    read_change,
    read_consent,
    read_contract,
    read_disbursement_policy,
    read_funding_source,
    read_limit_policy,
    read_line,
    read_loan,
    read_model,
    read_policy,
    read_product,
    read_report,
    read_schedule,
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


# ---------------------------------------------------------------------------------------------- products


@router.post("/credit/products", response_model=ProductRead, status_code=201,
             summary="Create a loan product (version 1 of a new code)")
def create_product(body: ProductCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_product(products.create_product(
        uow, writer.tenant_id, body.model_dump(mode="json", exclude_unset=True), actor=writer.principal.actor)),
        permission=CONFIGURE, status_code=201)


@router.get("/credit/products", response_model=Page[ProductRead], summary="List loan products (every version)")
def list_products(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  code: Annotated[Line | None, Query(max_length=40)] = None,
                  status: Annotated[ProductStatus | None, Query()] = None,
                  kind: Annotated[ProductKind | None, Query()] = None) -> Page[ProductRead]:
    return reader.run(lambda uow: page(products.list_products(
        uow, reader.tenant_id, code=code, status=status.value if status else None, kind=kind.value if kind else None,
        after=starting_after, limit=limit), limit, read_product, lambda p: p.id))


@router.get("/credit/products/{product_id}", response_model=ProductRead,
            summary="Get a loan product version, with the APR of its terms")
def get_product(product_id: Id, reader: CurrentReader) -> ProductRead:
    return reader.run(lambda uow: read_product(products.get_product(uow, reader.tenant_id, product_id)))


@router.post("/credit/products/{product_id}/revise", response_model=ProductRead, status_code=201,
             summary="Write the next version of an active product with some fields changed")
def revise_product(product_id: Id, body: ProductRevise, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_product(products.revise_product(
        uow, writer.tenant_id, product_id, body.model_dump(mode="json", exclude_unset=True),
        actor=writer.principal.actor)), permission=CONFIGURE, status_code=201)


@router.post("/credit/products/{product_id}/retire", response_model=ProductRead,
             summary="Stop offering a product version (its loans keep their terms)")
def retire_product(product_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_product(products.retire_product(uow, writer.tenant_id, product_id,
                                                                       actor=writer.principal.actor)),
                      permission=CONFIGURE)


@router.post("/credit/schedules/preview", response_model=ScheduleRead,
             summary="A repayment schedule with its APR and effective annual rate, without an application")
def preview_schedule(body: SchedulePreview, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> ScheduleRead:
        found = products.preview(uow, writer.tenant_id, principal=body.principal_amount, term=body.term,
                                 start_on=body.start_date, product_id=body.product_id,
                                 pricing=body.model_dump(mode="json", include=set(PRICING_FIELDS)))
        return read_schedule(found.schedule, product_id=found.product_id,
                             subsidy=found.subsidy.to_json() if found.subsidy else None)

    return writer.run(work, permission=SCORE)


# ---------------------------------------------------------------------------------------------- limits


@router.get("/credit/limit-policy", response_model=LimitPolicyRead, summary="The limit policy")
def get_limit_policy(reader: CurrentReader) -> LimitPolicyRead:
    return reader.run(lambda uow: read_limit_policy(limits.policy_row(uow, reader.tenant_id)))


@router.put("/credit/limit-policy", response_model=LimitPolicyRead,
            summary="Change fields of the limit policy (the rest keep their value)")
def put_limit_policy(body: LimitPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_limit_policy(limits.set_policy(
        uow, writer.tenant_id, body.model_dump(mode="json", exclude_unset=True), actor=writer.principal.actor)),
        permission=CONFIGURE)


def _line(uow: UnitOfWork, line: CreditLine) -> CreditLineRead:
    return read_line(line, limits.sub_limits(uow, line))


@router.post("/credit/applicants/{applicant_id}/credit-line", response_model=CreditLineRead, status_code=201,
             summary="Open the applicant's credit line: an explained limit and its product sub-limits")
def grant_line(applicant_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
               body: CreditLineCreate | None = None):
    requested = (body or CreditLineCreate()).requested_amount
    return writer.run(lambda uow: _line(uow, limits.grant_line(uow, writer.tenant_id, applicant_id,
                                                               requested_amount=requested,
                                                               actor=writer.principal.actor)),
                      permission=SCORE, status_code=201)


@router.get("/credit/lines", response_model=Page[CreditLineRead], summary="List credit lines")
def list_lines(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               status: Annotated[Literal["active", "frozen", "closed"] | None, Query()] = None,
               applicant_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[CreditLineRead]:
    def work(uow: UnitOfWork) -> Page[CreditLineRead]:
        rows = limits.list_lines(uow, reader.tenant_id, status=status, applicant_id=applicant_id,
                                 after=starting_after, limit=limit)
        return page(rows, limit, lambda line: _line(uow, line), lambda line: line.id)

    return reader.run(work)


@router.get("/credit/lines/{line_id}", response_model=CreditLineRead,
            summary="Get a credit line: limits, use, sub-limits and the calculation behind them")
def get_line(line_id: Id, reader: CurrentReader) -> CreditLineRead:
    return reader.run(lambda uow: _line(uow, limits.get_line(uow, reader.tenant_id, line_id)))


@router.get("/credit/lines/{line_id}/changes", response_model=Page[LimitChangeRead],
            summary="The line's limit-change log: every change with its reason and actor")
def list_changes(line_id: Id, reader: CurrentReader, limit: Limit = 50,
                 starting_after: Cursor = None) -> Page[LimitChangeRead]:
    return reader.run(lambda uow: page(limits.list_changes(uow, reader.tenant_id, line_id, after=starting_after,
                                                           limit=limit), limit, read_change, lambda c: c.id))


@router.get("/credit/lines/{line_id}/availability", response_model=AvailabilityRead,
            summary="What a loan of a product can have from this line now, and why not more")
def get_availability(line_id: Id, reader: CurrentReader,
                     product_id: Annotated[Line, Query(min_length=1, max_length=40)]) -> AvailabilityRead:
    def work(uow: UnitOfWork) -> AvailabilityRead:
        line = limits.get_line(uow, reader.tenant_id, line_id)
        product = products.get_product(uow, reader.tenant_id, product_id)
        found = limits.available_for(uow, reader.tenant_id, line.applicant_id, product)
        return AvailabilityRead(product_id=product.id, **found.to_json())

    return reader.run(work)


@router.post("/credit/lines/{line_id}/review", response_model=CreditLineRead,
             summary="Re-calculate the line now from the latest score, bureau report and repayment record")
def review_line(line_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> CreditLineRead:
        limits.review_line(uow, writer.tenant_id, line_id, actor=writer.principal.actor, reason="on_demand_review")
        return _line(uow, limits.get_line(uow, writer.tenant_id, line_id))

    return writer.run(work, permission=SCORE)


@router.post("/credit/lines/{line_id}/adjust", response_model=CreditLineRead,
             summary="Set the line's limit or a sub-limit by hand, with a note")
def adjust_line(line_id: Id, body: LineAdjust, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> CreditLineRead:
        limits.adjust(uow, writer.tenant_id, line_id, limit_amount=body.limit_amount, limit_group=body.limit_group,
                      note=body.note, actor=writer.principal.actor)
        return _line(uow, limits.get_line(uow, writer.tenant_id, line_id))

    return writer.run(work, permission=CONFIGURE)


@router.post("/credit/lines/{line_id}/freeze", response_model=CreditLineRead,
             summary="Freeze a line: nothing can be drawn until it is unfrozen")
def freeze_line(line_id: Id, writer: CurrentWriter, body: LineNote | None = None):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> CreditLineRead:
        limits.freeze(uow, writer.tenant_id, line_id, note=(body or LineNote()).note, actor=writer.principal.actor)
        return _line(uow, limits.get_line(uow, writer.tenant_id, line_id))

    return writer.run(work, permission=CONFIGURE)


@router.post("/credit/lines/{line_id}/unfreeze", response_model=CreditLineRead, summary="Unfreeze a line")
def unfreeze_line(line_id: Id, writer: CurrentWriter, body: LineNote | None = None):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> CreditLineRead:
        limits.unfreeze(uow, writer.tenant_id, line_id, note=(body or LineNote()).note, actor=writer.principal.actor)
        return _line(uow, limits.get_line(uow, writer.tenant_id, line_id))

    return writer.run(work, permission=CONFIGURE)


# ---------------------------------------------------------------------------------------------- applications


@router.post("/credit/applications", response_model=ApplicationRead, status_code=201,
             summary="Apply for a loan: decided now (approve, decline or review) with reasons for the applicant")
def submit_application(body: ApplicationCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_application(applications.submit(
        uow, writer.tenant_id, applicant_id=body.applicant_id, product_id=body.product_id,
        product_code=body.product_code, principal_amount=body.principal_amount, term=body.term,
        purpose=body.purpose.value, device_id=body.device_id, ip=body.ip, actor=writer.principal.actor)),
        permission=SCORE, status_code=201)


@router.get("/credit/applications", response_model=Page[ApplicationRead], summary="List loan applications")
def list_applications(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                      applicant_id: Annotated[Line | None, Query(max_length=40)] = None,
                      status: Annotated[ApplicationStatus | None, Query()] = None,
                      product_code: Annotated[Line | None, Query(max_length=40)] = None,
                      auto_outcome: Annotated[Literal["approve", "decline", "review"] | None, Query()] = None,
                      ) -> Page[ApplicationRead]:
    return reader.run(lambda uow: page(applications.list_applications(
        uow, reader.tenant_id, applicant_id=applicant_id, status=status.value if status else None,
        product_code=product_code, auto_outcome=auto_outcome, after=starting_after, limit=limit),
        limit, read_application, lambda a: a.id))


@router.get("/credit/applications/figures", response_model=ApplicationFiguresRead,
            summary="Approval, automatic-approval and review rates and decision latency over a range")
def application_figures(reader: CurrentReader, since: Annotated[Instant | None, Query()] = None,
                        until: Annotated[Instant | None, Query()] = None) -> ApplicationFiguresRead:
    return reader.run(lambda uow: ApplicationFiguresRead(**applications.figures(uow, reader.tenant_id, since=since,
                                                                                until=until)))


@router.get("/credit/applications/{application_id}", response_model=ApplicationRead,
            summary="Get a loan application with its decision and reasons")
def get_application(application_id: Id, reader: CurrentReader) -> ApplicationRead:
    return reader.run(lambda uow: read_application(applications.get_application(uow, reader.tenant_id,
                                                                                application_id)))


@router.post("/credit/applications/{application_id}/cancel", response_model=ApplicationRead,
             summary="Withdraw an application in review or approved and unsigned (its limit is released)")
def cancel_application(application_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_application(applications.cancel(uow, writer.tenant_id, application_id,
                                                                       actor=writer.principal.actor)),
                      permission=SCORE)


@router.get("/credit/applications/{application_id}/contract", response_model=ContractRead,
            summary="The loan agreement of an approved application: its text and SHA-256")
def get_contract(application_id: Id, reader: CurrentReader) -> ContractRead:
    return reader.run(lambda uow: read_contract(contracts.get_contract(uow, reader.tenant_id, application_id)))


@router.post("/credit/applications/{application_id}/contract/accept", response_model=ContractRead,
             summary="Sign the agreement electronically: the digest the applicant saw, the channel and IP")
def accept_contract(application_id: Id, body: ContractAccept, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_contract(contracts.accept(
        uow, writer.tenant_id, application_id, sha256=body.sha256, channel=body.channel, ip=body.ip,
        actor=writer.principal.actor)), permission=SCORE)


@router.get("/credit/application-policy", response_model=ApplicationPolicyRead,
            summary="The automatic review's thresholds")
def get_application_policy(reader: CurrentReader) -> ApplicationPolicyRead:
    return reader.run(lambda uow: read_application_policy(applications.policy_row(uow, reader.tenant_id)))


@router.put("/credit/application-policy", response_model=ApplicationPolicyRead,
            summary="Change some of the automatic review's thresholds (the rest keep their value)")
def put_application_policy(body: ApplicationPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_application_policy(applications.set_policy(
        uow, writer.tenant_id, body.model_dump(mode="json", exclude_unset=True), actor=writer.principal.actor)),
        permission=CONFIGURE)


# ---------------------------------------------------------------------------------------------- disbursement


@router.post("/credit/funding-sources", response_model=FundingSourceRead, status_code=201,
             summary="Add a funding source: the own reserve or a partner bank, its cost of funds and quota")
def create_funding_source(body: FundingSourceCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_funding_source(funding.create_source(
        uow, writer.tenant_id, body.model_dump(mode="json", exclude_none=True), actor=writer.principal.actor)),
        permission=CONFIGURE, status_code=201)


@router.get("/credit/funding-sources", response_model=Page[FundingSourceRead], summary="List funding sources")
def list_funding_sources(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                         currency: Annotated[Line | None, Query(min_length=3, max_length=3)] = None,
                         ) -> Page[FundingSourceRead]:
    return reader.run(lambda uow: page(funding.list_sources(
        uow, reader.tenant_id, after=starting_after, limit=limit + 1, currency_code=currency),
        limit, read_funding_source, lambda s: s.id))


@router.get("/credit/funding-sources/{source_id}", response_model=FundingSourceRead,
            summary="Get a funding source with its quota used and cost accrued")
def get_funding_source(source_id: Id, reader: CurrentReader) -> FundingSourceRead:
    return reader.run(lambda uow: read_funding_source(funding.get_source(uow, reader.tenant_id, source_id)))


@router.post("/credit/funding-sources/{source_id}", response_model=FundingSourceRead,
             summary="Change a funding source's rate, quota, name or active flag")
def update_funding_source(source_id: Id, body: FundingSourceUpdate,  # type: ignore[no-untyped-def]
                          writer: CurrentWriter):
    return writer.run(lambda uow: read_funding_source(funding.update_source(
        uow, writer.tenant_id, source_id, body.model_dump(mode="json", exclude_none=True),
        actor=writer.principal.actor)), permission=CONFIGURE)


def _disburse(writer: Writer, application_id: str, merchant_id: str | None):  # type: ignore[no-untyped-def]
    made: list[str] = []

    def flow() -> None:
        made.append(disbursement.disburse(writer.db, writer.tenant_id, application_id, merchant_id=merchant_id,
                                          actor=writer.principal.actor))

    return writer.run_flow(flow, lambda uow: read_loan(disbursement.get_loan(uow, writer.tenant_id, made[0])),
                           permission=SCORE, status_code=201)


@router.post("/credit/loans", response_model=LoanRead, status_code=201,
             summary="Disburse a signed application from the cheapest funding source")
def create_loan(body: LoanCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return _disburse(writer, body.application_id, body.merchant_id)


@router.post("/credit/applications/{application_id}/disburse", response_model=LoanRead, status_code=201,
             summary="Disburse a signed application from the cheapest funding source")
def disburse_application(application_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                         body: DisburseBody | None = None):
    return _disburse(writer, application_id, body.merchant_id if body else None)


@router.post("/credit/disbursements/batch", response_model=BatchRead,
             summary="Disburse several signed applications, each on its own, with a result per item")
def disburse_batch(body: BatchDisburse, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    results: list[disbursement.BatchItem] = []

    def flow() -> None:
        results.extend(disbursement.disburse_batch(writer.db, writer.tenant_id,
                                                   [item.model_dump() for item in body.items],
                                                   actor=writer.principal.actor))

    return writer.run_flow(flow, lambda uow: BatchRead(items=[BatchItemRead(
        application_id=r.application_id, loan_id=r.loan_id, status=r.status, error=r.error) for r in results]),
        permission=SCORE)


@router.get("/credit/loans", response_model=Page[LoanRead], summary="List loans")
def list_loans(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               status: Annotated[LoanStatus | None, Query()] = None) -> Page[LoanRead]:
    return reader.run(lambda uow: page(disbursement.list_loans(
        uow, reader.tenant_id, status=status.value if status else None, after=starting_after, limit=limit + 1),
        limit, read_loan, lambda loan: loan.id))


@router.get("/credit/loans/{loan_id}", response_model=LoanRead, summary="Get a loan with its funding choice")
def get_loan(loan_id: Id, reader: CurrentReader) -> LoanRead:
    return reader.run(lambda uow: read_loan(disbursement.get_loan(uow, reader.tenant_id, loan_id)))


@router.post("/credit/loans/{loan_id}/query", response_model=LoanRead,
             summary="Ask the bank about a disbursement still in flight and apply the answer")
def query_loan(loan_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def flow() -> None:
        disbursement.query_disbursement(writer.db, writer.tenant_id, loan_id, actor=writer.principal.actor)

    return writer.run_flow(flow, lambda uow: read_loan(disbursement.get_loan(uow, writer.tenant_id, loan_id)),
                           permission=SCORE)


@router.get("/credit/disbursement-policy", response_model=DisbursementPolicyRead,
            summary="Whether signed applications are disbursed automatically")
def get_disbursement_policy(reader: CurrentReader) -> DisbursementPolicyRead:
    return reader.run(lambda uow: read_disbursement_policy(disbursement.policy_row(uow, reader.tenant_id)))


@router.put("/credit/disbursement-policy", response_model=DisbursementPolicyRead,
            summary="Turn automatic disbursement of signed applications on or off")
def put_disbursement_policy(body: DisbursementPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_disbursement_policy(disbursement.set_policy(
        uow, writer.tenant_id, automatic=body.automatic, actor=writer.principal.actor)), permission=CONFIGURE)
