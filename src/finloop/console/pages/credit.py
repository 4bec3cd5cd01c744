"""Credit: the portfolio dashboard (the book, overdue and bad debt rates, vintage curves, roll rates, profit and
loss), applications with their decision and reasons, applicants with their credit lines and limit history, loans
with their schedule, repayments and write-off, and the collections queue.

Every figure of the dashboard comes from ``credit.portfolio.service`` (the same the API answers); every action
calls the service the API endpoint calls, under the API's permission string, through ``act``: a refused or
invalid action writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Select, or_, select

from finloop.console import charts
from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, database, field, form_of
from finloop.console.pages.approvals import LIMIT_OVERRIDE_ACTION, WRITE_OFF_ACTION
from finloop.console.web import (
    Column,
    Filter,
    badge,
    choice,
    equals,
    html,
    listing,
    money,
    parse_amount,
    parse_day,
    reference_now,
)
from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit import applications as credit_applications
from finloop.credit import disbursement, limits
from finloop.credit import service as credit
from finloop.credit.collections import service as collections
from finloop.credit.collections.domain import CaseStatus, PromiseStatus, Queue
from finloop.credit.collections.models import CollectionCase
from finloop.credit.domain import ApplicationStatus
from finloop.credit.models import (
    Applicant,
    CreditLine,
    CreditScore,
    LoanApplication,
    LoanContract,
    LoanProduct,
)
from finloop.credit.models import Loan as LoanRow
from finloop.credit.portal import service as portal
from finloop.credit.portal.models import PortalMessage
from finloop.credit.portfolio import domain as portfolio_domain
from finloop.credit.portfolio import service as portfolio
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import BUCKETS, OPEN_STATES, AccountState
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import UnitOfWork
from finloop.risk.models import RiskDecision
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import ApprovalRequest
from finloop.tenancy.service import Role

router = APIRouter()

#: The API's permission strings (credit/endpoints.py, servicing/endpoints.py, collections/endpoints.py).
SERVICE = "credit.service"
WRITE_OFF = "credit.write_off"
COLLECT = "credit.collect"
CONFIGURE = "credit.configure"
#: Month ends the roll-rate matrix covers by default, ending with the last closed month.
ROLL_MONTHS = 6
PREPAYMENT_OPTIONS = ("reduce_installment", "reduce_term", "payoff")


def _products(uow: UnitOfWork, tenant_id: str) -> list[str]:
    return list(uow.session.scalars(select(LoanProduct.code).where(LoanProduct.tenant_id == tenant_id)
                                    .distinct().order_by(LoanProduct.code)))


def _previous_month(month: str) -> str:
    year, number = portfolio_domain.parse_month(month, "month")
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def _months_back(month: str, count: int) -> str:
    for _ in range(count):
        month = _previous_month(month)
    return month


def _rate(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# ---------------------------------------------------------------------------------------------- dashboard


def _vintage_chart(curves: Sequence[dict[str, Any]]) -> Any:
    """One line per origination month (and currency) over months on book; a month not yet reached is a gap."""
    if not curves:
        return None
    last = max((p["months_on_book"] for c in curves for p in c["points"]), default=0)
    series: dict[str, Sequence[tuple[str, charts.Number | None]]] = {}
    for curve in curves:
        rates = {p["months_on_book"]: p["rate"] for p in curve["points"]}
        name = curve["origination_month"] + ("" if len(curves) == len({c["origination_month"] for c in curves})
                                             else f" {curve['currency']}")
        series[name] = [(str(mob), float(rates[mob]) if rates.get(mob) is not None else None)
                        for mob in range(last + 1)]
    return charts.line_chart(series, title="Vintage curves", y_format=charts.pct_axis)


def _roll_tables(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each matrix as rows of cells with the share of the row's loans (the shade) and the counts behind it."""
    tables = []
    for matrix in found["matrices"]:
        rows = []
        for row in matrix["rows"]:
            shares = row["count_shares"] or {}
            rows.append({"bucket": row["bucket"], "loans": row["loans"], "principal": row["principal"],
                         "cells": [{"column": column, "loans": row["counts"][column],
                                    "principal": row["principals"][column],
                                    "share": _rate(shares.get(column))} for column in found["columns"]]})
        tables.append({"currency": matrix["currency"], "rows": rows})
    return tables


@router.get("/credit")
def landing(request: Request, staff: CurrentStaff, as_of: str = "", product: str = "", threshold: str = "30",
            roll_from: str = "", roll_to: str = "") -> Response:
    with database(request).uow(read_only=True) as uow:
        day = parse_day(as_of, param="as_of") if as_of else reference_now(uow.session, staff, uow.clock.now()).date()
        code = product or None
        if not threshold.isdigit():
            raise InvalidRequest("The threshold is a whole number of days past due.", code="invalid_threshold",
                                 param="threshold")
        for value, param in ((roll_from, "roll_from"), (roll_to, "roll_to")):
            if value:
                portfolio_domain.parse_month(value, param)
        month_to = roll_to or _previous_month(portfolio_domain.month_of(day))
        month_from = roll_from or _months_back(month_to, ROLL_MONTHS)
        summary = portfolio.portfolio_summary(uow, staff.tenant_id, as_of=day, product_code=code)
        vintage = portfolio.vintage(uow, staff.tenant_id, threshold_dpd=int(threshold), product_code=code)
        rolls = portfolio.roll_rates(uow, staff.tenant_id, month_from=month_from, month_to=month_to,
                                     product_code=code)
        pnl = portfolio.pnl(uow, staff.tenant_id, product_code=code)
        codes = _products(uow, staff.tenant_id)
    return html(request, "credit/dashboard.html", summary=summary, vintage=vintage, rolls=rolls,
                roll_tables=_roll_tables(rolls), vintage_chart=_vintage_chart(vintage["curves"]), pnl=pnl,
                products=codes, chosen={"as_of": day.isoformat(), "product": product, "threshold": threshold,
                                        "roll_from": month_from, "roll_to": month_to})


# ---------------------------------------------------------------------------------------------- applications

APPLICATION_COLUMNS = (
    Column("Application", lambda a: a.id, link=lambda a: f"/console/credit/applications/{a.id}"),
    Column("Submitted", lambda a: a.submitted_at),
    Column("Applicant", lambda a: a.applicant_id, link=lambda a: f"/console/credit/customers/{a.applicant_id}"),
    Column("Product", lambda a: a.product_code),
    Column("Principal", lambda a: a.principal_amount, show=lambda a: money(a.principal_amount, a.currency),
           numeric=True),
    Column("Currency", lambda a: a.currency),
    Column("Term", lambda a: f"{a.term} {a.term_unit}"),
    Column("Score", lambda a: a.score, numeric=True),
    Column("Rating", lambda a: a.rating),
    Column("Automatic review", lambda a: a.auto_outcome, show=lambda a: badge(a.auto_outcome)),
    Column("Decision", lambda a: a.final_outcome, show=lambda a: badge(a.final_outcome)),
    Column("Status", lambda a: a.status, show=lambda a: badge(a.status)),
    Column("Reasons", lambda a: " ".join(r["code"] for r in a.reasons)),
)


def _decision(query: Select[Any], value: str) -> Select[Any]:
    if value == "pending":
        return query.where(LoanApplication.final_outcome.is_(None))
    return query.where(LoanApplication.final_outcome == value)


@router.get("/credit/applications")
def application_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        filters = (
            Filter("status", "Status", equals(LoanApplication.status), choice(*(s.value for s in ApplicationStatus))),
            Filter("product", "Product", equals(LoanApplication.product_code),
                   choice(*_products(uow, staff.tenant_id))),
            Filter("decision", "Decision", _decision, choice("approve", "decline", "pending")),
            Filter("auto", "Automatic review", equals(LoanApplication.auto_outcome), choice("approve", "decline",
                                                                                           "review")),
        )
        return listing(request, uow.session,
                       select(LoanApplication).where(LoanApplication.tenant_id == staff.tenant_id),
                       title="Loan applications", columns=APPLICATION_COLUMNS, order_by=(LoanApplication.id.desc(),),
                       filters=filters, export_name="loan-applications", template="credit/list.html",
                       search=lambda q: or_(LoanApplication.id == q, LoanApplication.applicant_id == q),
                       search_label="application or applicant id")


@router.get("/credit/applications/{application_id}")
def application_detail(request: Request, staff: CurrentStaff, application_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        application = credit_applications.get_application(uow, staff.tenant_id, application_id)
        score = None if application.score_id is None else uow.session.scalar(select(CreditScore).where(
            CreditScore.tenant_id == staff.tenant_id, CreditScore.id == application.score_id))
        risk = None if application.risk_decision_id is None else uow.session.scalar(select(RiskDecision).where(
            RiskDecision.tenant_id == staff.tenant_id, RiskDecision.id == application.risk_decision_id))
        contract = uow.session.scalar(select(LoanContract).where(LoanContract.tenant_id == staff.tenant_id,
                                                                 LoanContract.application_id == application.id))
        loan = uow.session.scalar(select(LoanRow).where(LoanRow.tenant_id == staff.tenant_id,
                                                        LoanRow.application_id == application.id))
        return html(request, "credit/application.html", application=application, score=score, risk=risk,
                    contract=contract, loan=loan, details=application.details)


# ---------------------------------------------------------------------------------------------- applicants and lines

CUSTOMER_COLUMNS = (
    Column("Applicant", lambda r: r.Applicant.id, link=lambda r: f"/console/credit/customers/{r.Applicant.id}"),
    Column("Party", lambda r: f"{r.Applicant.party_kind} {r.Applicant.party_id}"),
    Column("Employment", lambda r: r.Applicant.employment),
    Column("Declared income", lambda r: r.Applicant.declared_income_amount,
           show=lambda r: money(r.Applicant.declared_income_amount, r.Applicant.currency), numeric=True),
    Column("Currency", lambda r: r.Applicant.currency),
    Column("Line", lambda r: r.CreditLine.id if r.CreditLine else None),
    Column("Line status", lambda r: r.CreditLine.status if r.CreditLine else None,
           show=lambda r: badge(r.CreditLine.status if r.CreditLine else None)),
    Column("Limit", lambda r: r.CreditLine.limit_amount if r.CreditLine else None,
           show=lambda r: money(r.CreditLine.limit_amount, r.CreditLine.currency) if r.CreditLine else "—",
           numeric=True),
    Column("Used", lambda r: r.CreditLine.used_amount if r.CreditLine else None,
           show=lambda r: money(r.CreditLine.used_amount, r.CreditLine.currency) if r.CreditLine else "—",
           numeric=True),
    Column("Reserved", lambda r: r.CreditLine.reserved_amount if r.CreditLine else None,
           show=lambda r: money(r.CreditLine.reserved_amount, r.CreditLine.currency) if r.CreditLine else "—",
           numeric=True),
    Column("Flags", lambda r: " ".join(r.Applicant.flags)),
)


def _line_status(query: Select[Any], value: str) -> Select[Any]:
    if value == "none":
        return query.where(CreditLine.id.is_(None))
    return query.where(CreditLine.status == value)


@router.get("/credit/customers")
def customer_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        filters = (
            Filter("line", "Line", _line_status, choice(*(s.value for s in limits.LineStatus), "none")),
            Filter("party", "Party", equals(Applicant.party_kind), choice("customer", "merchant")),
        )
        query = (select(Applicant, CreditLine)
                 .outerjoin(CreditLine, (CreditLine.applicant_id == Applicant.id)
                            & (CreditLine.tenant_id == staff.tenant_id))
                 .where(Applicant.tenant_id == staff.tenant_id))
        return listing(request, uow.session, query, title="Applicants and credit lines", columns=CUSTOMER_COLUMNS,
                       order_by=(Applicant.id.desc(),), filters=filters, scalars=False, export_name="credit-lines",
                       template="credit/list.html",
                       search=lambda q: or_(Applicant.id == q, Applicant.party_id == q, CreditLine.id == q),
                       search_label="applicant, customer, merchant or line id")


@router.get("/credit/customers/{applicant_id}")
def customer_detail(request: Request, staff: CurrentStaff, applicant_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, staff.tenant_id, applicant_id)
        line = limits.find_line(uow, staff.tenant_id, applicant.id)
        subs = sorted(limits.sub_limits(uow, line).values(), key=lambda s: s.limit_group) if line else []
        changes = list(reversed(limits.list_changes(uow, staff.tenant_id, line.id, limit=500))) if line else []
        scores = list(uow.session.scalars(select(CreditScore).where(
            CreditScore.tenant_id == staff.tenant_id, CreditScore.applicant_id == applicant.id)
            .order_by(CreditScore.scored_at.desc()).limit(10)))
        applied = credit_applications.list_applications(uow, staff.tenant_id, applicant_id=applicant.id, limit=100)
        accounts = list(uow.session.scalars(select(LoanAccount).where(
            LoanAccount.tenant_id == staff.tenant_id, LoanAccount.applicant_id == applicant.id)
            .order_by(LoanAccount.loan_id.desc())))
        return html(request, "credit/customer.html", applicant=applicant, line=line, subs=subs, changes=changes,
                    scores=scores, applications=applied, accounts=accounts)


def _line_action(request: Request, staff: ActingStaff, applicant_id: str, *, action: str, done: str,
                 change: Callable[[UnitOfWork, str, dict[str, str]], Any]) -> Response:
    form = form_of(request)
    with database(request).uow(read_only=True) as uow:
        line_id = limits.line_of(uow, staff.tenant_id, applicant_id).id
    return act(request, staff, action=f"credit_line.{action}", object_type="credit_line", object_id=line_id,
               work=lambda uow: change(uow, line_id, form), permission=CONFIGURE, done=done, form=form,
               back=f"/console/credit/customers/{applicant_id}")


@router.post("/credit/customers/{applicant_id}/line/adjust")
def adjust_line(request: Request, staff: ActingStaff, applicant_id: str) -> Response:
    """A limit set by hand overrides the scoring: one person asks, a risk analyst approves, and the approval
    carries it out (``approvals.EXECUTORS``)."""
    form = form_of(request)

    def ask(uow: UnitOfWork) -> ApprovalRequest:
        line = limits.line_of(uow, staff.tenant_id, applicant_id)
        amount = parse_amount(field(form, "limit_amount"), line.currency, param="limit_amount", positive=False)
        group = field(form, "limit_group", required=False)
        note = field(form, "note") or ""
        return tenancy.request_approval(
            uow, staff.principal, action=LIMIT_OVERRIDE_ACTION, required_role=Role.RISK_ANALYST,
            object_type="credit_line", object_id=line.id,
            payload={"applicant_id": applicant_id, "limit_amount": amount, "currency": line.currency,
                     "previous_limit_amount": line.limit_amount, "limit_group": group, "note": note})

    return act(request, staff, action="credit_line.override_requested", object_type="approval", object_id=None,
               work=ask, permission=CONFIGURE, form=form, back="/console/approvals/{id}",
               done="Limit change requested: a risk analyst approves it.")


@router.post("/credit/customers/{applicant_id}/line/freeze")
def freeze_line(request: Request, staff: ActingStaff, applicant_id: str) -> Response:
    return _line_action(request, staff, applicant_id, action="frozen", done="Line frozen.",
                        change=lambda uow, line_id, form: limits.freeze(
                            uow, staff.tenant_id, line_id, note=form.get("note", ""), actor=staff.principal.actor))


@router.post("/credit/customers/{applicant_id}/line/unfreeze")
def unfreeze_line(request: Request, staff: ActingStaff, applicant_id: str) -> Response:
    return _line_action(request, staff, applicant_id, action="unfrozen", done="Line unfrozen.",
                        change=lambda uow, line_id, form: limits.unfreeze(
                            uow, staff.tenant_id, line_id, note=form.get("note", ""), actor=staff.principal.actor))


# ---------------------------------------------------------------------------------------------- loans


def _account_money(name: str) -> Callable[[Any], Any]:
    return lambda r: getattr(r.LoanAccount, name) if r.LoanAccount else None


LOAN_COLUMNS = (
    Column("Loan", lambda r: r.Loan.id, link=lambda r: f"/console/credit/loans/{r.Loan.id}"),
    Column("Disbursed", lambda r: r.LoanAccount.disbursed_on if r.LoanAccount else None),
    Column("Applicant", lambda r: r.Loan.applicant_id,
           link=lambda r: f"/console/credit/customers/{r.Loan.applicant_id}"),
    Column("Product", lambda r: r.code),
    Column("Principal", lambda r: r.Loan.principal_amount, show=lambda r: money(r.Loan.principal_amount,
                                                                                 r.Loan.currency), numeric=True),
    Column("Outstanding", _account_money("principal_outstanding"),
           show=lambda r: money(r.LoanAccount.principal_outstanding, r.Loan.currency) if r.LoanAccount else "—",
           numeric=True),
    Column("Currency", lambda r: r.Loan.currency),
    Column("Loan status", lambda r: r.Loan.status, show=lambda r: badge(r.Loan.status)),
    Column("State", _account_money("state"), show=lambda r: badge(r.LoanAccount.state if r.LoanAccount else None)),
    Column("Bucket", _account_money("bucket")),
    Column("DPD", _account_money("dpd"), numeric=True),
)


@router.get("/credit/loans")
def loan_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        filters = (
            Filter("state", "State", equals(LoanAccount.state), choice(*(s.value for s in AccountState))),
            Filter("bucket", "Bucket", equals(LoanAccount.bucket), choice(*(b.value for b in BUCKETS))),
            Filter("product", "Product", equals(LoanProduct.code), choice(*_products(uow, staff.tenant_id))),
        )
        query = (select(LoanRow, LoanAccount, LoanProduct.code)
                 .join(LoanProduct, LoanProduct.id == LoanRow.product_id)
                 .outerjoin(LoanAccount, LoanAccount.loan_id == LoanRow.id)
                 .where(LoanRow.tenant_id == staff.tenant_id))
        return listing(request, uow.session, query, title="Loans", columns=LOAN_COLUMNS,
                       order_by=(LoanRow.id.desc(),), filters=filters, scalars=False, export_name="loans",
                       template="credit/list.html",
                       search=lambda q: or_(LoanRow.id == q, LoanRow.application_id == q, LoanRow.applicant_id == q),
                       search_label="loan, application or applicant id")


@router.get("/credit/loans/{loan_id}")
def loan_detail(request: Request, staff: CurrentStaff, loan_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        loan = disbursement.get_loan(uow, staff.tenant_id, loan_id)
        account = uow.session.get(LoanAccount, loan.id)
        product = uow.session.get(LoanProduct, loan.product_id)
        quote = None
        if account is not None and account.state in OPEN_STATES:
            try:
                quote = servicing.payoff_quote(uow, staff.tenant_id, loan.id)
            except Conflict:
                quote = None  # the product allows no early repayment
        cases = list(uow.session.scalars(select(CollectionCase).where(
            CollectionCase.tenant_id == staff.tenant_id, CollectionCase.loan_id == loan.id)
            .order_by(CollectionCase.id.desc())))
        return html(request, "credit/loan.html", loan=loan, account=account, product=product, quote=quote,
                    installments=servicing.installments(uow, staff.tenant_id, loan.id),
                    repayments=servicing.repayments(uow, staff.tenant_id, loan.id),
                    changes=servicing.schedule_changes(uow, staff.tenant_id, loan.id), cases=cases,
                    attempts=disbursement.attempts(uow, staff.tenant_id, loan.id),
                    is_open=account is not None and account.state in OPEN_STATES,
                    prepayment_options=PREPAYMENT_OPTIONS)


def _money_action(request: Request, staff: ActingStaff, loan_id: str, *, action: str, done: str, permission: str,
                  apply: Callable[[UnitOfWork, int, dict[str, str]], Any]) -> Response:
    """A form that moves money on a loan: the amount typed is read in the loan's currency inside the action, so
    a refused user is told so before anything is read and a bad amount writes nothing."""
    form = form_of(request)

    def work(uow: UnitOfWork) -> Any:
        account = servicing.get_account(uow, staff.tenant_id, loan_id)
        return apply(uow, parse_amount(field(form, "amount"), account.currency), form)

    return act(request, staff, action=action, object_type="loan", object_id=loan_id, work=work,
               permission=permission, done=done, form=form, back=f"/console/credit/loans/{loan_id}")


@router.post("/credit/loans/{loan_id}/repayments")
def record_repayment(request: Request, staff: ActingStaff, loan_id: str) -> Response:
    def apply(uow: UnitOfWork, amount: int, form: dict[str, str]) -> Any:
        return servicing.repay(uow, staff.tenant_id, loan_id, amount=amount, reference=field(form, "reference"),
                               source="manual", prepayment=field(form, "prepayment", required=False),
                               actor=staff.principal.actor)

    return _money_action(request, staff, loan_id, action="loan.repayment_recorded", done="Repayment recorded.",
                         permission=SERVICE, apply=apply)


@router.post("/credit/loans/{loan_id}/recoveries")
def record_recovery(request: Request, staff: ActingStaff, loan_id: str) -> Response:
    def apply(uow: UnitOfWork, amount: int, form: dict[str, str]) -> Any:
        return servicing.recover(uow, staff.tenant_id, loan_id, amount=amount, reference=field(form, "reference"),
                                 actor=staff.principal.actor)

    return _money_action(request, staff, loan_id, action="loan.recovery_recorded", done="Recovery recorded.",
                         permission=SERVICE, apply=apply)


@router.post("/credit/loans/{loan_id}/write-off")
def write_off(request: Request, staff: ActingStaff, loan_id: str) -> Response:
    """A write-off by hand takes a second person: it is asked for here and carried out when a finance user
    approves it (``approvals.EXECUTORS``)."""
    form = form_of(request)

    def ask(uow: UnitOfWork) -> ApprovalRequest:
        loan = servicing.get_account(uow, staff.tenant_id, loan_id)
        if loan.state not in OPEN_STATES:
            raise Conflict(f"The loan is {loan.state}; only an open loan can be written off.", code="loan_closed",
                           param="loan_id")
        reason = field(form, "reason") or ""
        if len(reason) > 200:
            raise InvalidRequest("reason is 1 to 200 characters.", code="invalid_reason", param="reason")
        return tenancy.request_approval(
            uow, staff.principal, action=WRITE_OFF_ACTION, required_role=Role.FINANCE, object_type="loan",
            object_id=loan_id, payload={"reason": reason, "currency": loan.currency,
                                        "amount": loan.principal_outstanding + loan.interest_billed
                                        + loan.period_accrued + loan.fees_billed + loan.penalty_outstanding})

    return act(request, staff, action="loan.write_off_requested", object_type="approval", object_id=None, work=ask,
               permission=WRITE_OFF, form=form, back="/console/approvals/{id}",
               done="Write-off requested: another finance user approves it.")


# ---------------------------------------------------------------------------------------------- messages

MESSAGE_COLUMNS = (
    Column("Message", lambda m: m.id),
    Column("At", lambda m: m.created_at),
    Column("Applicant", lambda m: m.applicant_id, link=lambda m: f"/console/credit/messages/{m.applicant_id}"),
    Column("From", lambda m: m.sender),
    Column("Text", lambda m: m.body, show=lambda m: m.body[:120] + ("…" if len(m.body) > 120 else "")),
)


@router.get("/credit/messages")
def messages(request: Request, staff: CurrentStaff) -> Response:
    """Support's inbox: what borrowers wrote in the portal, and the answers."""
    with database(request).uow(read_only=True) as uow:
        filters = (Filter("sender", "From", equals(PortalMessage.sender), choice("borrower", "staff")),)
        return listing(request, uow.session, select(PortalMessage).where(PortalMessage.tenant_id == staff.tenant_id),
                       title="Messages from borrowers", columns=MESSAGE_COLUMNS, order_by=(PortalMessage.id.desc(),),
                       filters=filters, search=lambda q: or_(PortalMessage.applicant_id == q, PortalMessage.id == q),
                       search_label="applicant or message id", template="credit/list.html")


@router.get("/credit/messages/{applicant_id}")
def conversation(request: Request, staff: CurrentStaff, applicant_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, staff.tenant_id, applicant_id)
        shown = portal.recent_messages(uow, staff.tenant_id, applicant.id)
        return html(request, "credit/conversation.html", applicant=applicant, messages=shown)


@router.post("/credit/messages/{applicant_id}")
def answer(request: Request, staff: ActingStaff, applicant_id: str) -> Response:
    form = form_of(request)
    return act(request, staff, action="portal_message.answered", object_type="applicant", object_id=applicant_id,
               work=lambda uow: portal.post_message(uow, staff.tenant_id, applicant_id, sender="staff",
                                                    body=form.get("body"), actor=staff.principal.actor),
               permission=SERVICE, form=form, done="Answer sent.", back=f"/console/credit/messages/{applicant_id}")


# ---------------------------------------------------------------------------------------------- collections

CASE_COLUMNS = (
    Column("Case", lambda c: c.id, link=lambda c: f"/console/credit/collections/{c.id}"),
    Column("Loan", lambda c: c.loan_id, link=lambda c: f"/console/credit/loans/{c.loan_id}"),
    Column("Opened", lambda c: c.opened_on),
    Column("Status", lambda c: c.status, show=lambda c: badge(c.status)),
    Column("Queue", lambda c: c.queue),
    Column("Bucket", lambda c: c.bucket),
    Column("DPD", lambda c: c.dpd, numeric=True),
    Column("Overdue", lambda c: c.overdue_amount, show=lambda c: money(c.overdue_amount, c.currency), numeric=True),
    Column("Currency", lambda c: c.currency),
    Column("Assignee", lambda c: c.assignee_id),
    Column("Escalated", lambda c: c.escalated_on),
)


@router.get("/credit/collections")
def case_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        users = tenancy.list_users(uow, staff.tenant_id)
        filters = (
            Filter("status", "Status", equals(CollectionCase.status), choice(*(s.value for s in CaseStatus))),
            Filter("queue", "Queue", equals(CollectionCase.queue), choice(*(q.value for q in Queue))),
            Filter("bucket", "Bucket", equals(CollectionCase.bucket), choice(*(b.value for b in BUCKETS[1:]))),
            Filter("assignee", "Assignee", equals(CollectionCase.assignee_id),
                   [(u.id, u.name or u.email) for u in users]),
        )
        return listing(request, uow.session,
                       select(CollectionCase).where(CollectionCase.tenant_id == staff.tenant_id),
                       title="Collections", columns=CASE_COLUMNS, order_by=(CollectionCase.id.desc(),),
                       filters=filters, export_name="collection-cases",
                       search=lambda q: or_(CollectionCase.id == q, CollectionCase.loan_id == q),
                       search_label="case or loan id", open_counts=collections.count_open(uow, staff.tenant_id),
                       template="credit/collections.html")


@router.get("/credit/collections/{case_id}")
def case_detail(request: Request, staff: CurrentStaff, case_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        case = collections.get_case(uow, staff.tenant_id, case_id)
        collectors = {role.value for role in tenancy.PERMISSIONS[COLLECT]}
        users = [u for u in tenancy.list_users(uow, staff.tenant_id)
                 if u.status == "active" and collectors.intersection(u.roles)]
        return html(request, "credit/case.html", case=case, users=users,
                    actions=collections.list_actions(uow, staff.tenant_id, case.id, limit=500),
                    notes=collections.list_notes(uow, staff.tenant_id, case.id, limit=500),
                    promises=collections.list_promises(uow, staff.tenant_id, case_id=case.id, limit=500),
                    pending=collections.pending_promise(uow, case.id),
                    is_open=case.status == CaseStatus.OPEN.value, manual=case.queue == Queue.MANUAL.value,
                    today=servicing.servicing_date(uow, staff.tenant_id), promise_pending=PromiseStatus.PENDING.value)


def _case_action(request: Request, staff: ActingStaff, case_id: str, *, action: str, done: str,
                 work: Callable[[UnitOfWork, dict[str, str]], Any]) -> Response:
    form = form_of(request)
    return act(request, staff, action=f"collection_case.{action}", object_type="credit_collection_case",
               object_id=case_id, work=lambda uow: work(uow, form), permission=COLLECT, done=done, form=form,
               back=f"/console/credit/collections/{case_id}")


@router.post("/credit/collections/{case_id}/assign")
def assign_case(request: Request, staff: ActingStaff, case_id: str) -> Response:
    return _case_action(request, staff, case_id, action="assigned", done="Case assigned.",
                        work=lambda uow, form: collections.assign(
                            uow, staff.tenant_id, case_id, assignee_id=field(form, "assignee_id"),
                            actor=staff.principal.actor))


@router.post("/credit/collections/{case_id}/escalate")
def escalate_case(request: Request, staff: ActingStaff, case_id: str) -> Response:
    return _case_action(request, staff, case_id, action="escalated", done="Case escalated to the manual queue.",
                        work=lambda uow, form: collections.escalate(
                            uow, staff.tenant_id, case_id, reason=field(form, "reason", required=False) or "manual",
                            actor=staff.principal.actor))


@router.post("/credit/collections/{case_id}/notes")
def add_note(request: Request, staff: ActingStaff, case_id: str) -> Response:
    return _case_action(request, staff, case_id, action="note_added", done="Note added.",
                        work=lambda uow, form: collections.add_note(
                            uow, staff.tenant_id, case_id, body=field(form, "text"), author=staff.principal.actor))


@router.post("/credit/collections/{case_id}/promises")
def record_promise(request: Request, staff: ActingStaff, case_id: str) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> Any:
        case = collections.get_case(uow, staff.tenant_id, case_id)
        promised_on: date = parse_day(field(form, "promised_on") or "", param="promised_on")
        return collections.promise(uow, staff.tenant_id, case_id,
                                   amount=parse_amount(field(form, "amount"), case.currency),
                                   promised_on=promised_on, actor=staff.principal.actor)

    return _case_action(request, staff, case_id, action="promise_recorded", done="Promise to pay recorded.",
                        work=work)
