"""The payout gate on both databases: unverified parties are refused (manual) or skipped with a record
(automatic), automatic payouts are decided by the risk engine, the tier's limits hold, and the beneficiary is
screened once per watchlist version, a potential match parking the payout until its screening is reviewed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.db.uow import Database
from finloop.onboarding import service as onboarding
from finloop.onboarding.connectors.sandbox import SandboxVerifier
from finloop.onboarding.service import PartyNotVerified
from finloop.payments import flows as payment_flows
from finloop.payouts import flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.payouts.gate import BeneficiarySanctioned, PayoutLimitExceeded
from finloop.payouts.models import BeneficiaryScreening, Payout, PayoutSkip
from finloop.risk import service as risk
from finloop.risk.aml.models import Screening
from finloop.risk.cases import service as cases
from finloop.risk.models import RiskDecision, RuleSet
from finloop.settlement.accounts import PartyKind
from tests.conftest import TenantHandle
from tests.onboarding.conftest import Parties, import_sdn
from tests.onboarding.helpers import verify_party
from tests.payouts.conftest import ACCOUNT_NUMBER, balances, bank, fund  # noqa: F401

MONDAY = date(2026, 3, 2)


def _account(db: Database, tenant_id: str, kind: str, party_id: str, holder: str = "Li Wei") -> str:
    with db.uow() as uow:
        account = payouts.create_payout_account(uow, tenant_id, party_kind=kind, party_id=party_id, currency="CNY",
                                                holder_name=holder, account_number=ACCOUNT_NUMBER,
                                                bank_code="ICBKCNBJ")
        uow.commit()
    return account.id


def _count(db: Database, model: type) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_manual_payout_to_an_unverified_party_is_refused_with_nothing_written(
        db: Database, parties: Parties, bank: SandboxBank, client: TestClient) -> None:  # noqa: F811
    tenant = parties.tenant
    _account(db, tenant.id, "merchant", parties.merchant_id)
    fund(db, tenant.id, parties.merchant_id, 100_000)
    response = client.post("/v1/payouts", headers=tenant.headers, json={
        "party_kind": "merchant", "party_id": parties.merchant_id, "amount": 10_000, "currency": "CNY"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["details"]["onboarding_status"]) == (
        "party_not_verified", "party_id", None)
    assert _count(db, Payout) == 0 and _count(db, RiskDecision) == 0
    assert balances(db, tenant.id, parties.merchant_id) == (100_000, 100_000, 0)
    with pytest.raises(PartyNotVerified), db.uow() as uow:  # the service refuses too, whoever calls it
        payouts.request_payout(uow, tenant.id, party_kind="merchant", party_id=parties.merchant_id,
                               amount=10_000, currency="CNY")

    verify_party(db, tenant.id, "merchant", parties.merchant_id)
    paid = client.post("/v1/payouts", headers=tenant.headers, json={
        "party_kind": "merchant", "party_id": parties.merchant_id, "amount": 10_000, "currency": "CNY"})
    assert paid.status_code == 201, paid.text
    with db.uow(read_only=True) as uow:
        [decision] = uow.session.scalars(select(RiskDecision).where(RiskDecision.event_type == "payout")).all()
        assert decision.event["risk_tier"] == "low"


def test_the_gate_is_a_tenant_policy(db: Database, parties: Parties, bank: SandboxBank) -> None:  # noqa: F811
    tenant_id = parties.tenant.id
    _account(db, tenant_id, "promoter", parties.promoter_id)
    fund(db, tenant_id, parties.promoter_id, 5_000, kind=PartyKind.PROMOTER)
    with db.uow() as uow:
        onboarding.set_policy(uow, tenant_id, changes={"payout_gate": "off"}, actor="test")
        uow.commit()
    payout_id = flows.request_payout(db, tenant_id, party_kind=PartyKind.PROMOTER, party_id=parties.promoter_id,
                                     amount=5_000, currency="CNY")
    with db.uow(read_only=True) as uow:
        assert payouts.get_payout(uow, tenant_id, payout_id).status == "succeeded"


def test_automatic_payouts_skip_unverified_parties_on_record_and_are_decided(
        db: Database, parties: Parties, bank: SandboxBank, verifier: SandboxVerifier) -> None:  # noqa: F811
    tenant_id = parties.tenant.id
    for kind, party_id in (("merchant", parties.merchant_id), ("promoter", parties.promoter_id)):
        _account(db, tenant_id, kind, party_id)
        with db.uow() as uow:
            payouts.set_schedule(uow, tenant_id, party_kind=kind, party_id=party_id, currency="CNY",
                                 interval="daily")
            uow.commit()
        fund(db, tenant_id, party_id, 8_000, kind=PartyKind(kind))
    verify_party(db, tenant_id, "merchant", parties.merchant_id)

    created = flows.run_automatic(db, tenant_id, MONDAY)
    assert len(created) == 1
    assert flows.run_automatic(db, tenant_id, MONDAY) == []  # a re-run neither pays nor skips twice
    with db.uow(read_only=True) as uow:
        [skip] = payouts.list_skips(uow, tenant_id)
        assert (skip.party_kind, skip.party_id, skip.reason, skip.amount, skip.business_date) == (
            "promoter", parties.promoter_id, "party_not_verified", 8_000, MONDAY)
        [decision] = uow.session.scalars(select(RiskDecision).where(RiskDecision.event_type == "payout")).all()
        assert decision.event["automatic"] is True and decision.event["risk_tier"] == "low"
        assert payouts.get_payout(uow, tenant_id, created[0]).party_id == parties.merchant_id

    # A risk rule declining automatic payouts: skipped with its decision, nothing held.
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant_id, name="payouts", actor="test", event_types=["payout"])
        version = risk.create_version(uow, tenant_id, rule_set.id, actor="test", rules=[
            {"id": "no_robots", "expression": "event.amount > 0", "outcome": "decline"}],
            thresholds={"*": {"review": 1, "decline": 20}})
        uow.session.get(RuleSet, rule_set.id).live_version_id = version.id  # type: ignore[union-attr]
        uow.commit()
    fund(db, tenant_id, parties.merchant_id, 3_000)
    assert flows.run_automatic(db, tenant_id, date(2026, 3, 3)) == []
    with db.uow(read_only=True) as uow:
        declined = [s for s in payouts.list_skips(uow, tenant_id) if s.party_id == parties.merchant_id]
        assert [(s.reason, s.amount) for s in declined] == [("risk_declined", 3_000)]
        assert declined[0].decision_id is not None
    assert balances(db, tenant_id, parties.merchant_id)[1] == 3_000


def test_limits_follow_the_risk_tier(db: Database, parties: Parties, bank: SandboxBank,  # noqa: F811
                                     verifier: SandboxVerifier) -> None:
    tenant_id = parties.tenant.id
    with db.uow() as uow:
        onboarding.set_policy(uow, tenant_id, actor="test", changes={
            "medium_risk_countries": ["CN"],  # every party here comes out medium
            "limits": {"CNY": {"medium": {"per_payout": 6_000, "daily": 10_000}}}})
        uow.commit()
    verify_party(db, tenant_id, "merchant", parties.merchant_id)
    _account(db, tenant_id, "merchant", parties.merchant_id)
    fund(db, tenant_id, parties.merchant_id, 30_000)
    with pytest.raises(PayoutLimitExceeded) as caught:
        flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id,
                             amount=6_001, currency="CNY")
    assert (caught.value.code, caught.value.details["risk_tier"]) == ("payout_limit_exceeded", "medium")
    flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id, amount=6_000,
                         currency="CNY")
    with pytest.raises(PayoutLimitExceeded) as caught:
        flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id,
                             amount=4_001, currency="CNY")
    assert caught.value.details["daily_left"] == 4_000
    # The automatic payout is capped to what the day leaves.
    with db.uow() as uow:
        payouts.set_schedule(uow, tenant_id, party_kind="merchant", party_id=parties.merchant_id, currency="CNY",
                             interval="daily")
        uow.commit()
    [capped] = flows.run_automatic(db, tenant_id, MONDAY)
    with db.uow(read_only=True) as uow:
        assert payouts.get_payout(uow, tenant_id, capped).amount == 4_000


def test_the_beneficiary_is_screened_once_per_list_version_and_a_hit_parks_the_payout(
        db: Database, parties: Parties, bank: SandboxBank, verifier: SandboxVerifier) -> None:  # noqa: F811
    tenant_id = parties.tenant.id
    verify_party(db, tenant_id, "merchant", parties.merchant_id)
    clean = _account(db, tenant_id, "merchant", parties.merchant_id, holder="Tea House Ltd")
    fund(db, tenant_id, parties.merchant_id, 100_000)
    import_sdn(db, tenant_id)

    def pay(amount: int, account: str) -> str:
        return flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id,
                                    amount=amount, currency="CNY", payout_account_id=account)

    pay(1_000, clean)
    pay(1_000, clean)
    assert _count(db, BeneficiaryScreening) == 1  # screened once for this list version
    listed = _account(db, tenant_id, "merchant", parties.merchant_id, holder="Global Shell Trading LLC")
    parked = pay(2_000, listed)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, parked)
        assert (payout.status, payout.attempts) == ("pending_approval", 0) and payout.screening_id
        screening = uow.session.get(Screening, payout.screening_id)
        assert screening is not None and (screening.subject_type, screening.status) == ("beneficiary",
                                                                                         "potential_match")
        case_id = screening.case_id
    flows.process(db)  # the screening is not reviewed yet: the payout waits
    with db.uow(read_only=True) as uow:
        assert payouts.get_payout(uow, tenant_id, parked).status == "pending_approval"
    second = pay(3_000, listed)  # the same beneficiary: the cached screening, parked again, not re-screened
    assert _count(db, BeneficiaryScreening) == 2
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Screening).where(
            Screening.subject_type == "beneficiary")) == 2

    # The screening's case dismisses the match: both payouts go out on the next round.
    with db.uow() as uow:
        cases.close_case(uow, tenant_id, case_id or "", outcome="false_positive", action="approve",
                         actor="analyst")
        uow.commit()
    db.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    flows.process(db)
    with db.uow(read_only=True) as uow:
        assert {payouts.get_payout(uow, tenant_id, p).status for p in (parked, second)} == {"succeeded"}


def test_a_confirmed_beneficiary_cancels_the_parked_payout_and_refuses_the_next(
        db: Database, parties: Parties, bank: SandboxBank, verifier: SandboxVerifier) -> None:  # noqa: F811
    tenant_id = parties.tenant.id
    verify_party(db, tenant_id, "merchant", parties.merchant_id)
    import_sdn(db, tenant_id)
    listed = _account(db, tenant_id, "merchant", parties.merchant_id, holder="Global Shell Trading LLC")
    fund(db, tenant_id, parties.merchant_id, 10_000)
    parked = flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id,
                                  amount=4_000, currency="CNY")
    with db.uow() as uow:
        screening_id = payouts.get_payout(uow, tenant_id, parked).screening_id
        screening = uow.session.get(Screening, screening_id)
        assert screening is not None
        cases.close_case(uow, tenant_id, screening.case_id or "", outcome="valuable_alert", action="decline",
                         actor="analyst")
        uow.commit()
    db.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    flows.process(db)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, parked)
        assert (payout.status, payout.error_code) == ("canceled", "beneficiary_sanctioned")
    assert balances(db, tenant_id, parties.merchant_id)[1] == 10_000
    with pytest.raises(BeneficiarySanctioned):
        flows.request_payout(db, tenant_id, party_kind=PartyKind.MERCHANT, party_id=parties.merchant_id,
                             amount=1_000, currency="CNY", payout_account_id=listed)
    assert _count(db, Payout) == 1


def test_wallet_withdrawals_need_a_verified_customer(db: Database, parties: Parties,
                                                     tenant: TenantHandle) -> None:
    with pytest.raises(PartyNotVerified) as caught:
        payment_flows.withdraw(db, tenant.id, parties.customer_id, channel="none", amount=100, currency="CNY",
                               account_name="Li Wei", account_number="6222021234567890")
    assert caught.value.code == "party_not_verified"
    assert _count(db, RiskDecision) == 0
    assert _count(db, PayoutSkip) == 0
