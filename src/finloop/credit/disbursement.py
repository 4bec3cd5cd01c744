"""Loans and their disbursement: from a signed contract, funded from the cheapest source, paid to the customer's
bank account through the payout bank (record → call outside any transaction → apply) or, for buy-now-pay-later,
booked straight to the merchant's balance net of the merchant service fee.

Invariants owned here:
- one loan per application, made only from an application whose contract is signed (``contract_signed``); asking
  again for the same application returns the loan already made (no second payout);
- the loan keeps its product version, the contract's schedule, its funding source and the explanation of that
  choice; its status moves only along ``domain.LOAN_TRANSITIONS`` (409 otherwise);
- the transaction that records the loan draws on the source's quota and posts two balanced entries: the funding
  (debit ``assets:bank:credit_funding``, credit ``liabilities:funding:<source>`` or, from the own reserve,
  ``assets:bank:reserve``) and the disbursement (debit ``assets:loans:<limit group>:principal``, credit
  ``assets:bank:credit_funding`` for a bank payout, or the merchant's ``available`` balance for the principal net
  of the fee and ``income:credit:<limit group>:fees`` for the merchant's fee, the loan's fee income; when the
  platform pays the interest instead, a third entry books it as subsidised interest income against the platform's
  subsidy expense);
- a bank payout whose outcome is unknown (timeout, retryable refusal) is queried, never sent again blindly; a
  loan whose answer is still unknown stays ``disbursing`` until ``query_disbursement`` learns it;
- with the tenant's policy ``automatic`` on, ``disburse_signed`` (the ``credit.disburse_signed`` job) disburses every
  signed application that has no loan yet, except buy-now-pay-later (the merchant paid is the caller's to name),
  and queries the loans still ``disbursing``; with it off (the default) disbursement is manual (API, CLI, batch);
- success makes the loan ``active`` and consumes the application's limit reservation (``limits.consume``); a
  decline or failure reverses both entries, gives the quota back and releases the reservation, all in the
  transaction that records the failure. The application stays ``contract_signed`` (its loan is ``failed``):
  lending again takes a new application.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog
from sqlalchemy import func, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, FinloopError, InvalidRequest, NotFound
from finloop.credit import applications, contracts, funding, limits, products
from finloop.credit import service as credit
from finloop.credit.domain import (
    ApplicationStatus,
    DisbursementTarget,
    FundingKind,
    LoanStatus,
    check_loan_transition,
)
from finloop.credit.models import (
    Disbursement,
    DisbursementPolicy,
    FundingSource,
    Loan,
    LoanApplication,
    LoanProduct,
)
from finloop.credit.products import ProductKind, SubsidyPayer
from finloop.credit.schedule import schedule_json
from finloop.credit.servicing import books as servicing_books
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database, UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.payments import service as payments
from finloop.payments.connectors.base import Outcome, PayoutRequest, PayoutResult
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code

log = structlog.get_logger("finloop.credit")

OBJECT_TYPE = "loan"
MAX_BATCH = 100


def loan_principal_code(limit_group: str) -> str:
    return f"assets:loans:{limit_group}:principal"


def get_loan(uow: UnitOfWork, tenant_id: str, loan_id: str, *, lock: bool = False) -> Loan:
    row = uow.session.get(Loan, loan_id, with_for_update=lock)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such loan.", code="loan_not_found", param="loan_id")
    return row


def list_loans(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, after: str | None = None,
               limit: int = 50) -> list[Loan]:
    query = select(Loan).where(Loan.tenant_id == tenant_id)
    if status:
        query = query.where(Loan.status == status)
    if after:
        query = query.where(Loan.id > after)
    return list(uow.session.scalars(query.order_by(Loan.id).limit(limit)))


def attempts(uow: UnitOfWork, tenant_id: str, loan_id: str) -> list[Disbursement]:
    return list(uow.session.scalars(select(Disbursement).where(
        Disbursement.tenant_id == tenant_id, Disbursement.loan_id == loan_id).order_by(Disbursement.id)))


def _move(uow: UnitOfWork, loan: Loan, status: LoanStatus, *, actor: str) -> None:
    check_loan_transition(loan.status, status)
    before = loan.status
    loan.status = status.value
    audit.record(uow, loan.tenant_id, actor=actor, action=f"credit.loan.{status.value}", object_type=OBJECT_TYPE,
                 object_id=loan.id, before={"status": before}, after={"status": status.value})


# ---------------------------------------------------------------------------------------------- record


@dataclass(frozen=True, slots=True)
class Recorded:
    loan_id: str
    request: PayoutRequest | None  # None: nothing to send (already made, or booked to a merchant)


def _check_merchant(uow: UnitOfWork, tenant_id: str, product_kind: str, merchant_id: Any) -> str | None:
    if product_kind == ProductKind.BNPL.value:
        if not isinstance(merchant_id, str) or not merchant_id:
            raise InvalidRequest("A buy-now-pay-later loan is paid to a merchant: give merchant_id.",
                                 code="merchant_required", param="merchant_id")
        return payments.get_merchant(uow, tenant_id, merchant_id).id
    if merchant_id is not None:
        raise InvalidRequest("Only buy-now-pay-later loans are paid to a merchant.",
                             code="merchant_not_applicable", param="merchant_id")
    return None


def record(uow: UnitOfWork, tenant_id: str, application_id: str, *, merchant_id: Any = None,
           mode: str = "manual", actor: str) -> Recorded:
    """Make the loan of a signed application and book its funding and disbursement (see the module's doc)."""
    if not isinstance(application_id, str) or not application_id:
        raise InvalidRequest("application_id is required.", code="invalid_application_id", param="application_id")
    application = applications.get_application(uow, tenant_id, application_id, lock=True)
    existing = uow.session.scalar(select(Loan).where(Loan.tenant_id == tenant_id,
                                                     Loan.application_id == application.id))
    if existing is not None:
        return Recorded(existing.id, None)
    if application.status != ApplicationStatus.CONTRACT_SIGNED.value:
        raise Conflict(f"An application that is {application.status} cannot be disbursed; its contract must be "
                       "signed first.", code="application_not_signed", param="application_id")
    product = products.get_product(uow, tenant_id, application.product_id)
    merchant = _check_merchant(uow, tenant_id, product.kind, merchant_id)
    account_number = None
    if merchant is None:
        applicant = credit.get_applicant(uow, tenant_id, application.applicant_id)
        account_number = credit.reveal(uow, applicant, credit.PersonalField.BANK_ACCOUNT)
        if account_number is None:
            raise InvalidRequest("The applicant has no bank account to be paid to.", code="no_bank_account",
                                 param="application_id")
    contract = contracts.get_contract(uow, tenant_id, application.id)
    quote = products.quote(product, principal=application.principal_amount, term=application.term,
                           start_on=contract.start_on)
    principal, currency_code = application.principal_amount, application.currency
    fee = platform_subsidy = 0
    if merchant is not None and quote.subsidy is not None:
        if quote.subsidy.payer is SubsidyPayer.MERCHANT:
            fee = quote.subsidy.amount
        else:
            platform_subsidy = quote.subsidy.amount
    choice = funding.choose(uow, tenant_id, currency_code, principal)
    source = choice.source
    funding.draw(source, principal)
    now = uow.clock.now()
    loan = Loan(id=uow.ids.new("loan"), tenant_id=tenant_id, application_id=application.id,
                applicant_id=application.applicant_id, product_id=product.id, principal_amount=principal,
                currency=currency_code, schedule=schedule_json(quote.schedule), funding_source_id=source.id,
                funding_choice=choice.explanation,
                target=(DisbursementTarget.MERCHANT if merchant else DisbursementTarget.CUSTOMER_ACCOUNT).value,
                merchant_id=merchant, merchant_fee_amount=fee, status=LoanStatus.PENDING_DISBURSEMENT.value,
                mode=mode, entry_ids=[], failure_code=None, created_by=actor[:60], created_at=now,
                disbursed_at=None)
    uow.session.add(loan)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.loan.created", object_type=OBJECT_TYPE,
                 object_id=loan.id, after={"application_id": application.id, "principal_amount": principal,
                                           "funding_source_id": source.id, "target": loan.target})
    loan.entry_ids = _book(uow, loan, source, product.limit_group, platform_subsidy)
    attempt = Disbursement(id=uow.ids.new("disbursement"), tenant_id=tenant_id, loan_id=loan.id, amount=principal,
                           currency=currency_code, status="sending", bank_reference=None, error_code=None,
                           queried=False, created_at=now, completed_at=None)
    uow.session.add(attempt)
    if merchant is not None:
        attempt.status, attempt.completed_at = "booked", now
        _activate(uow, loan, application, actor=actor)
        uow.session.flush()
        return Recorded(loan.id, None)
    _move(uow, loan, LoanStatus.DISBURSING, actor=actor)
    uow.session.flush()
    assert account_number is not None
    return Recorded(loan.id, PayoutRequest(reference=attempt.id, amount=principal, currency=currency_code,
                                           account_name=f"loan {loan.id}", account_number=account_number,
                                           description=f"Loan {loan.id}"))


def _book(uow: UnitOfWork, loan: Loan, source: FundingSource, limit_group: str, platform_subsidy: int) -> list[str]:
    tenant_id, code, amount = loan.tenant_id, loan.currency, loan.principal_amount
    cash = funding.funding_cash_account(uow, tenant_id, code)
    funded = TransferSpec.simple(f"credit:loan_funding:{loan.id}", cash, funding.source_account(uow, source),
                                 amount, code, description=f"Funding of loan {loan.id} from {source.code}",
                                 metadata={"loan_id": loan.id, "funding_source_id": source.id})
    receivable = ensure_account(uow, tenant_id, AccountSpec(loan_principal_code(limit_group), AccountType.ASSET),
                                code)
    if loan.merchant_id is None:
        paid = TransferSpec.simple(f"credit:loan_disbursement:{loan.id}", receivable, cash, amount, code,
                                   description=f"Disbursement of loan {loan.id}", metadata={"loan_id": loan.id})
    else:
        merchant = ensure_account(uow, tenant_id, AccountSpec(
            party_account_code(PartyKind.MERCHANT, loan.merchant_id, Bucket.AVAILABLE), AccountType.LIABILITY,
            BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), code)
        postings = [PostingSpec(receivable, amount, code), PostingSpec(merchant, -(amount - loan.merchant_fee_amount),
                                                                       code)]
        if loan.merchant_fee_amount:
            income = servicing_books.income(uow, tenant_id, limit_group, servicing_books.Income.FEES, code)
            postings.append(PostingSpec(income, -loan.merchant_fee_amount, code))
        paid = TransferSpec(f"credit:loan_disbursement:{loan.id}", tuple(postings),
                            f"Disbursement of loan {loan.id} to merchant", None, {"loan_id": loan.id})
    specs = [funded, paid]
    if platform_subsidy:
        # The interest of an interest-free loan the platform pays: subsidised interest income against the platform's
        # subsidy expense (marketing), so the product's margin shows what the subsidy costs.
        specs.append(TransferSpec.simple(
            f"credit:subsidy:{loan.id}",
            servicing_books.account(uow, tenant_id, servicing_books.subsidies_code(limit_group), code),
            servicing_books.income(uow, tenant_id, limit_group, servicing_books.Income.SUBSIDY, code),
            platform_subsidy, code, description=f"Interest of loan {loan.id} paid by the platform",
            metadata={"loan_id": loan.id}))
    posted = ledger.post_transfers(uow, tenant_id, specs)
    return [entry.id for entry in posted]


def _activate(uow: UnitOfWork, loan: Loan, application: LoanApplication, *, actor: str) -> None:
    _move(uow, loan, LoanStatus.ACTIVE, actor=actor)
    loan.disbursed_at = uow.clock.now()
    limits.consume(uow, loan.tenant_id, loan.applicant_id, application.id, loan.principal_amount)
    product = uow.session.get(LoanProduct, loan.product_id)
    assert product is not None
    servicing.open_account(uow, loan, product)


def _fail(uow: UnitOfWork, loan: Loan, code: str, *, actor: str) -> None:
    _move(uow, loan, LoanStatus.FAILED, actor=actor)
    loan.failure_code = code[:40]
    for entry_id in reversed(loan.entry_ids):
        ledger.reverse_entry(uow, loan.tenant_id, entry_id, description=f"Failed disbursement of loan {loan.id}")
    funding.give_back(funding.get_source(uow, loan.tenant_id, loan.funding_source_id, lock=True),
                      loan.principal_amount)
    limits.release(uow, loan.tenant_id, loan.applicant_id, loan.application_id)


# ---------------------------------------------------------------------------------------------- bank


def _bank(db: Database) -> Any:
    from finloop.payouts import flows as payout_flows

    return payout_flows.bank(db)


def _call(db: Database, request: PayoutRequest) -> tuple[PayoutResult, bool]:
    from finloop.payouts.flows import _BANK_ERRORS

    sender = _bank(db)
    try:
        result: PayoutResult = sender.payout(request)
    except _BANK_ERRORS as error:  # a transport failure: the outcome is unknown
        log.warning("credit.disbursement.send_error", disbursement_id=request.reference, error=type(error).__name__)
        result = PayoutResult(Outcome.UNKNOWN, request.reference, error_code="bank_unreachable")
    if result.outcome is Outcome.UNKNOWN or (result.outcome is Outcome.FAILED and result.retryable):
        # Never send again before knowing: the bank may have paid despite the answer.
        answer = _query(db, request.reference)
        if answer.outcome is not Outcome.UNKNOWN:
            return answer, True
    return result, False


def _query(db: Database, reference: str) -> PayoutResult:
    from finloop.payouts.flows import _BANK_ERRORS

    try:
        answer: PayoutResult = _bank(db).query_payout(reference)
    except _BANK_ERRORS as error:
        log.warning("credit.disbursement.query_error", disbursement_id=reference, error=type(error).__name__)
        return PayoutResult(Outcome.UNKNOWN, reference, error_code="bank_unreachable")
    return answer


def _apply(db: Database, tenant_id: str, attempt_id: str, result: PayoutResult, *, queried: bool,
           actor: str) -> str:
    with db.uow() as uow:
        attempt = uow.session.get(Disbursement, attempt_id, with_for_update=True)
        assert attempt is not None and attempt.tenant_id == tenant_id
        loan = get_loan(uow, tenant_id, attempt.loan_id, lock=True)
        if loan.status != LoanStatus.DISBURSING.value:
            return loan.status
        attempt.queried = attempt.queried or queried
        attempt.bank_reference = result.channel_ref or attempt.bank_reference
        if result.outcome is Outcome.SUCCEEDED:
            attempt.status, attempt.completed_at = "succeeded", uow.clock.now()
            application = applications.get_application(uow, tenant_id, loan.application_id, lock=True)
            _activate(uow, loan, application, actor=actor)
        elif result.outcome in (Outcome.DECLINED, Outcome.FAILED, Outcome.CANCELED) or \
                (queried and result.outcome is Outcome.NOT_FOUND):
            attempt.status, attempt.completed_at = "failed", uow.clock.now()
            attempt.error_code = (result.error_code or result.outcome.value)[:60]
            _fail(uow, loan, f"bank_{result.outcome.value}", actor=actor)
        else:
            attempt.status = "unknown"
        status = loan.status
        uow.commit()
    return status


def disburse(db: Database, tenant_id: str, application_id: Any, *, merchant_id: Any = None, mode: str = "manual",
             actor: str) -> str:
    """Make and pay out the loan of a signed application; returns the loan's id."""
    with db.uow() as uow:
        recorded = record(uow, tenant_id, application_id, merchant_id=merchant_id, mode=mode, actor=actor)
        uow.commit()
    if recorded.request is not None:
        result, queried = _call(db, recorded.request)
        _apply(db, tenant_id, recorded.request.reference, result, queried=queried, actor=actor)
    return recorded.loan_id


def query_disbursement(db: Database, tenant_id: str, loan_id: str, *, actor: str) -> str:
    """Ask the bank about a loan still ``disbursing`` and apply the answer; returns the loan's status."""
    with db.uow(read_only=True) as uow:
        loan = get_loan(uow, tenant_id, loan_id)
        if loan.status != LoanStatus.DISBURSING.value:
            return loan.status
        attempt_id = attempts(uow, tenant_id, loan_id)[-1].id
    return _apply(db, tenant_id, attempt_id, _query(db, attempt_id), queried=True, actor=actor)


@dataclass(frozen=True, slots=True)
class BatchItem:
    application_id: str
    loan_id: str | None
    status: str | None
    error: dict[str, Any] | None


def disburse_batch(db: Database, tenant_id: str, items: Sequence[Mapping[str, Any]], *, actor: str) -> list[BatchItem]:
    """Disburse each item independently (a failing item does not stop the others); one result per item."""
    if not isinstance(items, Sequence) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidRequest(f"items is a list of 1 to {MAX_BATCH} applications.", code="invalid_batch",
                             param="items")
    results = []
    for item in items:
        application_id = item.get("application_id") if isinstance(item, Mapping) else None
        try:
            loan_id = disburse(db, tenant_id, application_id, merchant_id=item.get("merchant_id"), mode="batch",
                               actor=actor)
        except FinloopError as error:
            results.append(BatchItem(str(application_id)[:40], None, None,
                                     {"code": error.code, "message": error.message, "param": error.param}))
            continue
        with db.uow(read_only=True) as uow:
            status = get_loan(uow, tenant_id, loan_id).status
        results.append(BatchItem(str(application_id), loan_id, status, None))
    return results


# ---------------------------------------------------------------------------------------------- automatic


AUTOMATIC_BATCH = 100


def policy_row(uow: UnitOfWork, tenant_id: str) -> DisbursementPolicy:
    row = uow.session.get(DisbursementPolicy, tenant_id)
    if row is not None:
        return row
    return DisbursementPolicy(tenant_id=tenant_id, automatic=False, updated_by="default", updated_at=uow.clock.now())


def set_policy(uow: UnitOfWork, tenant_id: str, *, automatic: Any, actor: str) -> DisbursementPolicy:
    """Turn automatic disbursement on or off for the tenant; audited."""
    if not isinstance(automatic, bool):
        raise InvalidRequest("automatic is true or false.", code="invalid_automatic", param="automatic")
    row = uow.session.get(DisbursementPolicy, tenant_id, with_for_update=True)
    before = None if row is None else {"automatic": row.automatic}
    now = uow.clock.now()
    if row is None:
        row = DisbursementPolicy(tenant_id=tenant_id, automatic=automatic, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.automatic, row.updated_by, row.updated_at = automatic, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.disbursement_policy.updated",
                 object_type="credit_disbursement_policy", object_id=tenant_id, before=before,
                 after={"automatic": automatic})
    return row


def _due(uow: UnitOfWork, limit: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    automatic = select(DisbursementPolicy.tenant_id).where(DisbursementPolicy.automatic.is_(True))
    signed = uow.session.execute(
        select(LoanApplication.tenant_id, LoanApplication.id)
        .join(LoanProduct, LoanProduct.id == LoanApplication.product_id)
        .outerjoin(Loan, Loan.application_id == LoanApplication.id)
        .where(LoanApplication.status == ApplicationStatus.CONTRACT_SIGNED.value,
               LoanApplication.tenant_id.in_(automatic), LoanProduct.kind != ProductKind.BNPL.value,
               Loan.id.is_(None))
        .order_by(LoanApplication.id).limit(limit)).all()
    in_flight = uow.session.execute(
        select(Loan.tenant_id, Loan.id).where(Loan.status == LoanStatus.DISBURSING.value)
        .order_by(Loan.id).limit(limit)).all()
    return [(t, a) for t, a in signed], [(t, loan) for t, loan in in_flight]


def disburse_signed(db: Database, *, limit: int = AUTOMATIC_BATCH) -> int:
    """One round of automatic disbursement over the tenants that turned it on, and of queries for the loans of
    every tenant still in flight (however they were disbursed: an unknown outcome is never left to a person to
    remember); returns the loans touched. An application that cannot be disbursed (no funding, no bank account)
    is logged by code and tried next round."""
    with db.uow(read_only=True) as uow:
        signed, in_flight = _due(uow, limit)
    touched = 0
    for tenant_id, application_id in signed:
        try:
            disburse(db, tenant_id, application_id, mode="auto", actor="system:auto_disbursement")
        except FinloopError as error:
            log.warning("credit.disbursement.automatic_refused", tenant_id=tenant_id,
                        application_id=application_id, code=error.code)
            continue
        touched += 1
    for tenant_id, loan_id in in_flight:
        query_disbursement(db, tenant_id, loan_id, actor="system:auto_disbursement")
        touched += 1
    return touched


# ---------------------------------------------------------------------------------------------- accrual


def outstanding_by_source(uow: UnitOfWork, tenant_id: str) -> dict[str, int]:
    """The principal still owed on the open loans funded by each source: funding amortises with repayment."""
    from finloop.credit.servicing.domain import OPEN_STATES
    from finloop.credit.servicing.models import LoanAccount

    rows = uow.session.execute(
        select(Loan.funding_source_id, func.sum(LoanAccount.principal_outstanding))
        .join(LoanAccount, LoanAccount.loan_id == Loan.id)
        .where(Loan.tenant_id == tenant_id, LoanAccount.state.in_(OPEN_STATES)).group_by(Loan.funding_source_id))
    return {source_id: int(total) for source_id, total in rows}


def accrue_funding_cost(uow: UnitOfWork, tenant_id: str, business_date: date) -> int:
    """Accrue the day's cost of every partner bank's funds; returns the total posted (0 on a rerun)."""
    outstanding = outstanding_by_source(uow, tenant_id)
    sources = uow.session.scalars(select(FundingSource).where(
        FundingSource.tenant_id == tenant_id, FundingSource.kind == FundingKind.PARTNER_BANK.value)
        .order_by(FundingSource.id).with_for_update())
    return sum(funding.accrue_source(uow, source, business_date, outstanding.get(source.id, 0))
               for source in list(sources))
