"""Loan agreements: rendered from a Markdown template with the schedule and APR, hashed, and signed electronically.

Invariants owned here:
- the document is a pure function of the application, the product version, the applicant's masked national id,
  the lender's name and the start (disbursement) date: rendering twice gives the same bytes and the same
  SHA-256 (of its UTF-8 encoding); amounts are decimal strings of major units, rates decimal strings;
- a contract is issued once per application (unique), on approval; accepting it needs the application to be
  approved, the contract issued, and the digest the applicant saw to equal the stored one (409 otherwise);
  acceptance records its time, digest, channel and IP, moves the application to ``contract_signed``, and
  nothing about the contract changes afterwards (a second acceptance is a 409).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from sqlalchemy import select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit import products
from finloop.credit.domain import ApplicationStatus, masked
from finloop.credit.models import Applicant, LoanApplication, LoanContract, LoanProduct
from finloop.credit.schedule import major
from finloop.db.uow import UnitOfWork

TEMPLATE = "loan_agreement_v1.md"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHANNELS = ("app", "web", "api", "branch")


class ContractConflict(Conflict):
    code = "contract_conflict"


@cache
def _template(name: str) -> Template:
    return Template(resources.files("finloop.credit.templates").joinpath(name).read_text(encoding="utf-8"))


def lender_name_of(uow: UnitOfWork, tenant_id: str) -> str:
    from finloop.tenancy.models import Tenant

    tenant = uow.session.get(Tenant, tenant_id)
    return tenant.name if tenant is not None else tenant_id


def _rate(value: Decimal) -> str:
    return str(products.plain(value))


def render(application: LoanApplication, product: LoanProduct, applicant: Applicant, *, lender_name: str,
           start_on: date, template: str = TEMPLATE) -> str:
    """The agreement's text (Markdown)."""
    found = products.quote(product, principal=application.principal_amount, term=application.term,
                           start_on=start_on)
    plan, code = found.schedule, product.currency
    rows = "\n".join(f"| {i.number} | {i.due_on.isoformat()} | {major(i.principal, code)} | {major(i.interest, code)} "
                     f"| {major(i.fees, code)} | {major(i.total, code)} | {major(i.balance, code)} |"
                     for i in plan.installments)
    installment_fee = []
    if product.installment_fee_rate:
        installment_fee.append(f"{_rate(product.installment_fee_rate)} of the principal")
    if product.installment_fee_amount:
        installment_fee.append(f"{major(product.installment_fee_amount, code)} {code}")
    prepayment = {"free": "allowed at any time without a fee",
                  "fee": f"allowed, with a fee of {_rate(product.prepayment_fee_rate)} of the principal repaid early",
                  "not_allowed": "not allowed"}.get(product.prepayment, product.prepayment)
    values: dict[str, Any] = {
        "contract_number": application.id, "start_date": start_on.isoformat(), "lender_name": lender_name,
        "lender_id": application.tenant_id, "applicant_id": applicant.id,
        "national_id_masked": masked(applicant.national_id_last4), "product_name": product.name,
        "product_code": product.code, "product_version": product.version, "product_id": product.id,
        "purpose": application.purpose, "principal": major(application.principal_amount, code), "currency": code,
        "term": application.term, "term_unit": product.term_unit, "method": product.method,
        "rate": _rate(product.rate) if product.kind != "bnpl" else "0 (interest paid by the merchant or platform)",
        "rate_basis": product.rate_basis,
        "day_count_text": f", day count {product.day_count}" if product.day_count else "",
        "upfront_fee": major(plan.upfront_fee, code), "net_disbursed": major(plan.net_disbursed, code),
        "installment_fee_text": " plus ".join(installment_fee) or "none",
        "late_fee": major(product.late_fee_amount, code), "grace_days": product.grace_days,
        "penalty_rate": _rate(product.penalty_rate), "prepayment_text": prepayment, "schedule_rows": rows,
        "total_repaid": major(plan.totals["repaid"], code), "total_interest": major(plan.totals["interest"], code),
        "total_fees": major(plan.totals["fees"], code), "apr": str(plan.apr),
        "effective_annual_rate": str(plan.effective_annual_rate)}
    return _template(template).substitute(values)


def digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def issue(uow: UnitOfWork, application: LoanApplication, product: LoanProduct, applicant: Applicant) -> LoanContract:
    """Render and store the agreement of an approved application, disbursed (for the schedule) today."""
    start_on = uow.clock.now().date()
    document = render(application, product, applicant, lender_name=lender_name_of(uow, application.tenant_id),
                      start_on=start_on)
    contract = LoanContract(id=uow.ids.new("loan_contract"), tenant_id=application.tenant_id,
                            application_id=application.id, template=TEMPLATE, document=document,
                            sha256=digest(document), status="issued", start_on=start_on, created_at=uow.clock.now(),
                            accepted_at=None, accepted_sha256=None, accepted_channel=None, accepted_ip=None)
    uow.session.add(contract)
    uow.session.flush()
    return contract


def find_contract(uow: UnitOfWork, tenant_id: str, application_id: str, *, lock: bool = False) -> LoanContract | None:
    query = select(LoanContract).where(LoanContract.tenant_id == tenant_id,
                                       LoanContract.application_id == application_id)
    return uow.session.scalar(query.with_for_update() if lock else query)


def get_contract(uow: UnitOfWork, tenant_id: str, application_id: str, *, lock: bool = False) -> LoanContract:
    from finloop.credit import applications

    application = applications.get_application(uow, tenant_id, application_id)
    contract = find_contract(uow, tenant_id, application.id, lock=lock)
    if contract is None:
        raise ContractConflict("This application has no contract: only an approved application has one.",
                               code="contract_not_issued", param="application_id")
    return contract


def accept(uow: UnitOfWork, tenant_id: str, application_id: str, *, sha256: Any, channel: Any, ip: Any,
           actor: str) -> LoanContract:
    """Record the applicant's electronic signature of the agreement they saw (its SHA-256)."""
    from finloop.credit import applications

    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InvalidRequest("sha256 is 64 lower-case hex digits.", code="invalid_sha256", param="sha256")
    if channel not in CHANNELS:
        raise InvalidRequest(f"channel is one of {', '.join(CHANNELS)}.", code="invalid_channel", param="channel")
    ip = applications.check_ip(ip)
    application = applications.get_application(uow, tenant_id, application_id, lock=True)
    contract = get_contract(uow, tenant_id, application.id, lock=True)
    if contract.status == "signed":
        raise ContractConflict("The contract is already signed.", code="contract_already_signed",
                               param="application_id")
    if contract.status != "issued" or application.status != ApplicationStatus.APPROVED.value:
        raise ContractConflict(f"The application is {application.status}: its contract cannot be signed.",
                               code="application_state_conflict", param="application_id")
    if sha256 != contract.sha256:
        raise ContractConflict("The document's digest differs from the contract's: show the current contract and "
                               "ask again.", code="contract_hash_mismatch", param="sha256")
    now = uow.clock.now()
    contract.status, contract.accepted_at, contract.accepted_sha256 = "signed", now, sha256
    contract.accepted_channel, contract.accepted_ip = channel, ip
    application.expires_at = None
    applications.move(uow, application, ApplicationStatus.CONTRACT_SIGNED, actor=actor)
    audit.record(uow, tenant_id, actor=actor, action="credit.contract.signed", object_type="loan_contract",
                 object_id=contract.id, after={"application_id": application.id, "sha256": sha256,
                                               "channel": channel, "accepted_at": now.isoformat()})
    return contract
