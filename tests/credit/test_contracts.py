"""Loan agreements: rendered deterministically from the template with the schedule and APR, the applicant's
national id masked, hashed with SHA-256; accepting needs the hash the applicant saw (409 otherwise), records time,
channel and IP, signs the application's contract once, and nothing changes afterwards."""

from __future__ import annotations

from datetime import date

import pytest

from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit import applications, contracts, products
from finloop.credit import service as credit
from finloop.db.uow import Database
from tests.conftest import T0, TenantHandle
from tests.credit.test_applications import alice, submit  # noqa: F401
from tests.credit.test_limits import rated


def test_the_agreement_is_rendered_deterministically_with_the_schedule_and_apr(
        db: Database, tenant: TenantHandle, alice: tuple[str, str]) -> None:  # noqa: F811
    row = submit(db, tenant.id, alice[0], amount=1_000_000, term=12)
    with db.uow(read_only=True) as uow:
        contract = contracts.get_contract(uow, tenant.id, row.id)
        application = applications.get_application(uow, tenant.id, row.id)
        product = products.get_product(uow, tenant.id, application.product_id)
        applicant = credit.get_applicant(uow, tenant.id, application.applicant_id)
        again = contracts.render(application, product, applicant, lender_name=contracts.lender_name_of(uow, tenant.id),
                                 start_on=T0.date())
        plan = products.quote(product, principal=1_000_000, term=12, start_on=T0.date()).schedule
        text, sha, start_on = contract.document, contract.sha256, contract.start_on
        other = contracts.render(application, product, applicant, lender_name="x", start_on=date(2026, 3, 3))
    assert text == again and sha == contracts.digest(again) and start_on == T0.date()
    assert "Principal: 10000.00 CNY" in text and "APR" in text and str(plan.apr) in text
    assert str(plan.effective_annual_rate) in text
    assert "110101199003070011" not in text and "****0011" in text
    # 12 installment rows, the first due a month after the start, the last ending at a zero balance.
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 12 and rows[0].startswith("| 1 | 2026-04-02 |") and rows[-1].endswith("| 0.00 |")
    # Another start date renders another document, another digest.
    assert contracts.digest(other) != sha


def test_accepting_needs_the_hash_the_applicant_saw_and_happens_once(
        db: Database, tenant: TenantHandle, alice: tuple[str, str]) -> None:  # noqa: F811
    row = submit(db, tenant.id, alice[0])
    with db.uow(read_only=True) as uow:
        sha = contracts.get_contract(uow, tenant.id, row.id).sha256
    for bad, code in (({"sha256": "ABC"}, "invalid_sha256"), ({"channel": "fax"}, "invalid_channel"),
                      ({"ip": "nope"}, "invalid_ip")):
        args = {"sha256": sha, "channel": "app", "ip": "203.0.113.7", **bad}
        with db.uow() as uow, pytest.raises(InvalidRequest) as raised:
            contracts.accept(uow, tenant.id, row.id, actor="test", **args)
        assert raised.value.code == code
    with db.uow() as uow, pytest.raises(Conflict) as conflict:
        contracts.accept(uow, tenant.id, row.id, sha256="0" * 64, channel="app", ip=None, actor="test")
    assert conflict.value.code == "contract_hash_mismatch"
    with db.uow() as uow:
        signed = contracts.accept(uow, tenant.id, row.id, sha256=sha, channel="app", ip="203.0.113.7", actor="test")
        assert (signed.status, signed.accepted_at, signed.accepted_sha256) == ("signed", T0, sha)
        assert (signed.accepted_channel, signed.accepted_ip) == ("app", "203.0.113.7")
        uow.commit()
    with db.uow() as uow:
        application = applications.get_application(uow, tenant.id, row.id)
        assert application.status == "contract_signed" and application.expires_at is None
        assert application.reserved_amount == 500_000
        with pytest.raises(Conflict) as twice:
            contracts.accept(uow, tenant.id, row.id, sha256=sha, channel="app", ip=None, actor="test")
        assert twice.value.code == "contract_already_signed"
        with pytest.raises(Conflict):
            applications.cancel(uow, tenant.id, row.id, actor="test")
        assert applications.expire_due(uow, tenant.id, now=T0.replace(year=2027)) == 0


def test_a_declined_or_cancelled_application_cannot_be_signed(
        db: Database, tenant: TenantHandle, alice: tuple[str, str]) -> None:  # noqa: F811
    cancelled = submit(db, tenant.id, alice[0])
    with db.uow() as uow:
        sha = contracts.get_contract(uow, tenant.id, cancelled.id).sha256
        applications.cancel(uow, tenant.id, cancelled.id, actor="test")
        uow.commit()
    with db.uow() as uow, pytest.raises(Conflict) as raised:
        contracts.accept(uow, tenant.id, cancelled.id, sha256=sha, channel="web", ip=None, actor="test")
    assert raised.value.code == "application_state_conflict"
    rated(db, tenant.id, alice[0], "reject", score=300)
    declined = submit(db, tenant.id, alice[0])
    with db.uow() as uow, pytest.raises(Conflict) as none:
        contracts.accept(uow, tenant.id, declined.id, sha256=sha, channel="web", ip=None, actor="test")
    assert none.value.code == "contract_not_issued"
