"""Portfolio HTTP endpoints under ``/v1/credit/portfolio``: the book's summary, vintage curves, roll rates, profit
and loss, the unit economics of one loan, and the operating cost policy.

Reads need any key of the tenant; changing the operating cost policy needs ``credit.configure``. Every report
answers JSON, or CSV (``text/csv``) with ``?format=csv`` or at the same path ending in ``.csv``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit
from finloop.api.types import Line
from finloop.credit.portfolio import domain, service
from finloop.credit.portfolio.schemas import (
    OperatingCostPolicyRead,
    OperatingCostPolicyWrite,
    PnlRead,
    RollRatesRead,
    SummaryRead,
    UnitEconomicsRead,
    VintageRead,
)
from finloop.db.uow import UnitOfWork

router = APIRouter(prefix="/credit/portfolio", tags=["credit"])

CONFIGURE = "credit.configure"
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv (text/csv).")]
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
OptionalMonth = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
ProductCode = Annotated[Line | None, Query(min_length=1, max_length=40)]
CurrencyQuery = Annotated[str | None, Query(min_length=3, max_length=3, pattern="^[A-Z]{3}$")]
RateQuery = Annotated[str, Query(max_length=20, description="A decimal string such as 0.06.")]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}

SUMMARY_COLUMNS = ("currency", "figure", "bucket", "value")
VINTAGE_COLUMNS = ("currency", "origination_month", "loans", "principal_amount", "months_on_book", "loans_bad",
                   "principal_bad", "rate")
ROLL_COLUMNS = ("currency", "from_bucket", "to", "loans", "principal", "count_share", "principal_share")
PNL_COLUMNS = ("level", "loan_id", "currency", *service.PNL_COLUMNS)
UNIT_COLUMNS = ("funding", "currency", *service.PNL_COLUMNS)


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], name: str) -> Response:
    return Response(content=service.to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _answer(found: dict[str, Any], model: type[BaseModel], format: str,
            rows: Callable[[dict[str, Any]], Sequence[Mapping[str, Any]]], columns: Sequence[str],
            name: str) -> Any:
    if format == "csv":
        return _csv(rows(found), columns, name)
    return model.model_validate(found)


# ---------------------------------------------------------------------------------------------- summary


def _summary(reader: CurrentReader, as_of: date | None, since: date | None, product_code: str | None,
             format: str) -> Any:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        return service.portfolio_summary(uow, reader.tenant_id, as_of=as_of or uow.clock.now().date(),
                                         product_code=product_code, since=since)

    return _answer(reader.run(work), SummaryRead, format, service.summary_rows, SUMMARY_COLUMNS, "portfolio-summary")


@router.get("/summary", response_model=SummaryRead, responses=CSV_RESPONSE,
            summary="Outstanding principal, overdue and bad debt rates, approval, reborrow and limit utilisation")
def get_summary(reader: CurrentReader, as_of: Annotated[date | None, Query()] = None,
                since: Annotated[date | None, Query()] = None, product_code: ProductCode = None,
                format: Format = "json") -> Any:
    return _summary(reader, as_of, since, product_code, format)


@router.get("/summary.csv", responses=CSV_RESPONSE, response_class=Response, summary="The summary as CSV")
def get_summary_csv(reader: CurrentReader, as_of: Annotated[date | None, Query()] = None,
                    since: Annotated[date | None, Query()] = None, product_code: ProductCode = None) -> Any:
    return _summary(reader, as_of, since, product_code, "csv")


# ---------------------------------------------------------------------------------------------- vintage


def _vintage(reader: CurrentReader, threshold_dpd: int, basis: str, product_code: str | None, currency: str | None,
             from_month: str | None, to_month: str | None, format: str) -> Any:
    found = reader.run(lambda uow: service.vintage(
        uow, reader.tenant_id, threshold_dpd=threshold_dpd, basis=basis, product_code=product_code,
        currency_code=currency, from_month=from_month, to_month=to_month))
    return _answer(found, VintageRead, format, service.vintage_rows, VINTAGE_COLUMNS, "vintage")


Threshold = Annotated[int, Query(ge=1, le=service.MAX_THRESHOLD_DPD, description="Days past due counted as bad.")]
Basis = Annotated[Literal["count", "principal"], Query(description="Share of loans (count) or of principal.")]


@router.get("/vintage", response_model=VintageRead, responses=CSV_RESPONSE,
            summary="Vintage curves: share ever at or past the threshold by months on book, per origination month")
def get_vintage(reader: CurrentReader, threshold_dpd: Threshold = 30, basis: Basis = "count",
                product_code: ProductCode = None, currency: CurrencyQuery = None, from_month: OptionalMonth = None,
                to_month: OptionalMonth = None, format: Format = "json") -> Any:
    return _vintage(reader, threshold_dpd, basis, product_code, currency, from_month, to_month, format)


@router.get("/vintage.csv", responses=CSV_RESPONSE, response_class=Response, summary="Vintage curves as CSV")
def get_vintage_csv(reader: CurrentReader, threshold_dpd: Threshold = 30, basis: Basis = "count",
                    product_code: ProductCode = None, currency: CurrencyQuery = None,
                    from_month: OptionalMonth = None, to_month: OptionalMonth = None) -> Any:
    return _vintage(reader, threshold_dpd, basis, product_code, currency, from_month, to_month, "csv")


# ---------------------------------------------------------------------------------------------- roll rates


def _rolls(reader: CurrentReader, month_from: str, month_to: str, product_code: str | None, currency: str | None,
           format: str) -> Any:
    found = reader.run(lambda uow: service.roll_rates(uow, reader.tenant_id, month_from=month_from,
                                                      month_to=month_to, product_code=product_code,
                                                      currency_code=currency))
    return _answer(found, RollRatesRead, format, service.roll_rows, ROLL_COLUMNS, "roll-rates")


@router.get("/roll-rates", response_model=RollRatesRead, responses=CSV_RESPONSE,
            summary="Roll-rate matrix: bucket at each month end to bucket, paid off or written off at the next")
def get_roll_rates(reader: CurrentReader, month_from: Month, month_to: Month, product_code: ProductCode = None,
                   currency: CurrencyQuery = None, format: Format = "json") -> Any:
    return _rolls(reader, month_from, month_to, product_code, currency, format)


@router.get("/roll-rates.csv", responses=CSV_RESPONSE, response_class=Response, summary="Roll rates as CSV")
def get_roll_rates_csv(reader: CurrentReader, month_from: Month, month_to: Month, product_code: ProductCode = None,
                       currency: CurrencyQuery = None) -> Any:
    return _rolls(reader, month_from, month_to, product_code, currency, "csv")


# ---------------------------------------------------------------------------------------------- profit and loss


def _pnl(reader: CurrentReader, loan_id: str | None, month: str | None, product_code: str | None, limit: int,
         starting_after: str | None, format: str) -> Any:
    found = reader.run(lambda uow: service.pnl(uow, reader.tenant_id, loan_id=loan_id, month=month,
                                               product_code=product_code, after=starting_after, limit=limit))
    has_more = len(found["loans"]) > limit
    found["loans"] = found["loans"][:limit]
    found["has_more"] = has_more
    found["next_cursor"] = found["loans"][-1]["loan_id"] if has_more else None
    return _answer(found, PnlRead, format, service.pnl_rows, PNL_COLUMNS, "pnl")


LoanId = Annotated[Line | None, Query(min_length=1, max_length=40)]


@router.get("/pnl", response_model=PnlRead, responses=CSV_RESPONSE,
            summary="Profit and loss per loan and for the portfolio, reconciled against the general ledger")
def get_pnl(reader: CurrentReader, loan_id: LoanId = None, month: OptionalMonth = None,
            product_code: ProductCode = None, limit: Limit = 50, starting_after: Cursor = None,
            format: Format = "json") -> Any:
    return _pnl(reader, loan_id, month, product_code, limit, starting_after, format)


@router.get("/pnl.csv", responses=CSV_RESPONSE, response_class=Response, summary="Profit and loss as CSV")
def get_pnl_csv(reader: CurrentReader, loan_id: LoanId = None, month: OptionalMonth = None,
                product_code: ProductCode = None, limit: Limit = 500, starting_after: Cursor = None) -> Any:
    return _pnl(reader, loan_id, month, product_code, limit, starting_after, "csv")


# ---------------------------------------------------------------------------------------------- unit economics


def unit_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"funding": funding, "currency": found["currency"], **{c: found[funding][c] for c in service.PNL_COLUMNS}}
            for funding in ("bullet", "amortising")]


@router.get("/unit-economics", response_model=UnitEconomicsRead, responses=CSV_RESPONSE,
            summary="One loan's economics with bullet and with amortising funding (defaults: the worked example)")
def get_unit_economics(reader: CurrentReader,
                       principal_amount: Annotated[int, Query(ge=1, le=10**15)] = 1_000_000,
                       currency: Annotated[str, Query(min_length=3, max_length=3, pattern="^[A-Z]{3}$")] = "CNY",
                       annual_rate: RateQuery = "0.18",
                       term_months: Annotated[int, Query(ge=1, le=600)] = 12, funding_rate: RateQuery = "0.06",
                       provision_rate: RateQuery = "0.02", operating_cost_rate: RateQuery = "0.01",
                       format: Format = "json") -> Any:
    found = domain.unit_economics(principal_amount=principal_amount, currency_code=currency, annual_rate=annual_rate,
                                  term_months=term_months, funding_rate=funding_rate,
                                  provision_rate=provision_rate, operating_cost_rate=operating_cost_rate).to_json()
    return _answer(found, UnitEconomicsRead, format, unit_rows, UNIT_COLUMNS, "unit-economics")


# ---------------------------------------------------------------------------------------------- policy


def _policy_read(uow: UnitOfWork, tenant_id: str) -> OperatingCostPolicyRead:
    policy, row = service.operating_cost_policy(uow, tenant_id)
    return OperatingCostPolicyRead(policy=policy.to_json(), is_default=row is None)


@router.get("/operating-cost-policy", response_model=OperatingCostPolicyRead,
            summary="How operating cost is allocated to loans in the P&L")
def get_operating_cost_policy(reader: CurrentReader) -> OperatingCostPolicyRead:
    return reader.run(lambda uow: _policy_read(uow, reader.tenant_id))


@router.put("/operating-cost-policy", response_model=OperatingCostPolicyRead,
            summary="Set how operating cost is allocated: an annual rate of principal or an amount per loan-month")
def put_operating_cost_policy(body: OperatingCostPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> OperatingCostPolicyRead:
        service.set_operating_cost_policy(uow, writer.tenant_id, body.model_dump(exclude_none=True),
                                          actor=writer.principal.actor)
        return _policy_read(uow, writer.tenant_id)

    return writer.run(work, permission=CONFIGURE)
