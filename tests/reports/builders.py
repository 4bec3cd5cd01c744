"""Small records written straight into the tables a report reads, each with the figures a test checks."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from finloop.db.uow import Database
from finloop.ledger.domain import AccountType
from finloop.payments.dispute_models import Dispute
from finloop.payments.models import Payment, Refund
from finloop.payouts.models import Payout, PayoutAccount
from finloop.risk.aml.models import AmlAlert
from finloop.risk.cases.models import RiskCase
from finloop.risk.models import RiskDecision
from finloop.settlement.models import SettlementBatch
from tests.conftest import T0
from tests.credit.portfolio.conftest import post

FROM, TO = "2026-03-01", "2026-03-31"


def pay(db: Database, tenant_id: str, *, amount: int, channel: str | None, method: str = "wallet",
        status: str = "succeeded", refunded: int = 0, fee: int = 0, at: datetime = T0,
        currency: str = "CNY") -> str:
    with db.uow() as uow:
        row = Payment(id=uow.ids.new("payment"), tenant_id=tenant_id, amount=amount, currency=currency,
                      captured_amount=amount if status == "succeeded" else 0, refunded_amount=refunded,
                      fee_amount=fee, method=method, status=status, channel=channel, created_at=at, updated_at=at,
                      succeeded_at=at if status == "succeeded" else None)
        uow.session.add(row)
        uow.commit()
        return row.id


def refund(db: Database, tenant_id: str, payment_id: str, *, amount: int, channel: str, fee_returned: int = 0,
           at: datetime = T0) -> None:
    with db.uow() as uow:
        uow.session.add(Refund(id=uow.ids.new("refund"), tenant_id=tenant_id, payment_id=payment_id,
                               attempt_id="att_x", channel=channel, amount=amount, currency="CNY",
                               fee_returned_amount=fee_returned, status="succeeded", created_at=at, updated_at=at))
        uow.commit()


def ledger_day(db: Database, tenant_id: str) -> None:
    """Commission 100.00 and credit interest 50.00 earned into the bank, channel fees 20.00 paid from it."""
    bank = ("assets:bank:custody", AccountType.ASSET)
    post(db, tenant_id, "rep-1", bank, ("income:commission:0", AccountType.INCOME), 10_000)
    post(db, tenant_id, "rep-2", bank, ("income:credit:installment:interest", AccountType.INCOME), 5_000)
    post(db, tenant_id, "rep-3", ("expenses:channel_fees", AccountType.EXPENSE), bank, 2_000)


def decide(db: Database, tenant_id: str, *, rules: list[str], outcome: str, label: str | None = None,
           at: datetime = T0) -> None:
    with db.uow() as uow:
        uow.session.add(RiskDecision(
            id=uow.ids.new("risk_decision"), tenant_id=tenant_id, event_type="payment", event={}, features={},
            lists=[], bypassed=[], model_scores={}, fired=[{"rule_id": r, "score": 10, "outcome": None} for r in rules],
            score=10 * len(rules), outcome=outcome, reasons=[], rule_set_id=None, rule_set_version_id=None,
            model_versions={}, shadow_version_id=None, shadow_outcome=None, shadow_score=None, shadow_fired=[],
            object_ref=None, label=label, labelled_at=at if label else None, decided_at=at))
        uow.commit()


def dispute(db: Database, tenant_id: str, payment_id: str, *, amount: int, status: str, reason: str = "fraudulent",
            fee: int = 0) -> None:
    with db.uow() as uow:
        uow.session.add(Dispute(
            id=uow.ids.new("dispute"), tenant_id=tenant_id, payment_id=payment_id, attempt_id="att_x",
            channel="alipay", channel_dispute_id=uow.ids.new("dispute"), amount=amount, currency="CNY",
            reason=reason, status=status, evidence_files=[], from_pending_amount=amount, fee_amount=fee,
            created_at=T0, updated_at=T0))
        uow.commit()


def alert(db: Database, tenant_id: str, *, scenario: str, amount: int, case: str | None = None) -> str:
    """An AML alert; ``case`` "open" escalates it to an open case, "confirmed_fraud" to a closed one."""
    with db.uow() as uow:
        alert_id = uow.ids.new("aml_alert")
        case_id = None
        if case is not None:
            case_id = uow.ids.new("risk_case")
            closed = case != "open"
            uow.session.add(RiskCase(
                id=case_id, tenant_id=tenant_id, source="aml_alert", object_type="customer", object_id="cus_1",
                alert_id=alert_id, open_key=None if closed else f"aml_alert|customer|cus_1|{alert_id}",
                reason="aml", priority=1, status="closed" if closed else "open",
                outcome=case if closed else None, action="none" if closed else None, closed_by="t" if closed else None,
                closed_at=T0 if closed else None, created_at=T0, updated_at=T0))
        uow.session.add(AmlAlert(
            id=alert_id, tenant_id=tenant_id, scenario=scenario, subject_kind="customer", subject_id="cus_1",
            window_key=f"CNY:{alert_id[-8:]}", currency="CNY", window_start=T0 - timedelta(days=1), window_end=T0,
            total_amount=amount, evidence={}, description=f"{scenario} alert", status="open", case_id=case_id,
            created_at=T0))
        uow.commit()
        return alert_id


def batch(db: Database, tenant_id: str, *, settle_date: date, settled_on: date, party_id: str = "mer_1") -> None:
    with db.uow() as uow:
        uow.session.add(SettlementBatch(
            id=uow.ids.new("settlement_batch"), tenant_id=tenant_id, party_kind="merchant", party_id=party_id,
            currency="CNY", cohort_date=settle_date - timedelta(days=1), settle_date=settle_date,
            settled_on=settled_on, status="settled", amount=1_000, settlement_currency="CNY", settled_amount=1_000,
            reserve_amount=0, frozen_amount=0, available_amount=1_000, created_at=T0))
        uow.commit()


def payout(db: Database, tenant_id: str, *, requested_at: datetime, executed_on: date) -> None:
    with db.uow() as uow:
        account_id = uow.ids.new("payout_account")
        uow.session.add(PayoutAccount(id=account_id, tenant_id=tenant_id, party_kind="merchant", party_id="mer_1",
                                      currency="CNY", holder_name_sealed="x", account_number_sealed="x",
                                      account_last4="1234", bank_code="ICBC", status="active", created_at=T0))
        uow.session.flush()
        uow.session.add(Payout(id=uow.ids.new("payout"), tenant_id=tenant_id, party_kind="merchant", party_id="mer_1",
                               payout_account_id=account_id, amount=1_000, currency="CNY", status="paid",
                               description="", is_automatic=False, hold_id="hold_x", requested_by="test",
                               attempts=1, executed_on=executed_on, created_at=requested_at,
                               updated_at=requested_at))
        uow.commit()
