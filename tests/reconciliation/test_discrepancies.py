"""Runs and work items on both databases: idempotent re-runs, late files, resolutions and their entries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import polars as pl
import pytest

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payments.postings import channel_receivable_code, shard_of
from finloop.reconciliation import discrepancies as service
from finloop.reconciliation.match_models import Discrepancy, ReconMatch, ReconRun
from finloop.reconciliation.matching import LINE_SCHEMA, RECORD_SCHEMA
from tests.conftest import TenantHandle

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lines(*rows: tuple[int, str, int], day: date = DAY1) -> pl.DataFrame:
    return pl.DataFrame([{"id": i, "line_no": i, "value_on": day, "occurred_at": AT, "kind": "payment",
                          "our_reference": ref, "channel_reference": None, "amount": amount, "direction": "credit",
                          "fee_amount": 0, "currency": "CNY", "status": "SUCCESS", "counterparty": None,
                          "description": None} for i, ref, amount in rows], schema=LINE_SCHEMA)


def records(*rows: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame([{"record_id": rid, "kind": "payment", "payment_id": rid, "our_reference": rid,
                          "channel_reference": None, "channel": "wx", "amount": amount, "fee_amount": 0,
                          "currency": "CNY", "direction": "credit", "status": "succeeded", "occurred_at": AT,
                          "merchant_id": "mer_1", "method": "qr", "description": None, "group_key": None,
                          "carried_from": None} for rid, amount in rows], schema=RECORD_SCHEMA)


def items(db: Database, tenant_id: str) -> dict[str, SimpleNamespace]:
    """The tenant's discrepancies by class and reference, as plain snapshots."""
    with db.uow(read_only=True) as uow:
        found = service.list_discrepancies(uow, tenant_id, limit=100)
        return {f"{d.discrepancy_class}:{d.record_id or d.our_reference}":
                SimpleNamespace(**{c.key: getattr(d, c.key) for c in Discrepancy.__mapper__.column_attrs})
                for d in found}


def test_rerun_is_idempotent_and_a_late_file_rematches_open_items(db: Database, tenant: TenantHandle,
                                                                   other_tenant: TenantHandle) -> None:
    ours = records(("pay_a", 100), ("pay_b", 200), ("pay_c", 300))
    bill = lines((1, "pay_a", 100), (2, "pay_c", 290), (3, "pay_ghost", 50))
    with db.uow() as uow:
        first = service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY1, lines=bill, records=ours)
        uow.commit()
    assert first.counts["by_class"] == {"amount_mismatch": 1, "missing_at_channel": 1, "missing_on_platform": 1}
    assert first.matched_count == 2 and first.lines_count == 3
    with db.uow() as uow:  # the same inputs: the same run, nothing written
        again = service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY1, lines=bill, records=ours)
        uow.commit()
    assert again.id == first.id
    found = items(db, tenant.id)
    assert set(found) == {"amount_mismatch:pay_c", "missing_at_channel:pay_b", "missing_on_platform:pay_ghost"}

    with db.uow() as uow:
        service.assign(uow, tenant.id, found["amount_mismatch:pay_c"].id, assignee="ops@example.com")
        service.add_note(uow, tenant.id, found["amount_mismatch:pay_c"].id, author="ops", text="asked the channel")
        service.resolve(uow, tenant.id, found["missing_on_platform:pay_ghost"].id, action="mark_no_action",
                        reason="test line of the channel", actor="ops")
        uow.commit()
    # A corrected file for the same day: the ghost line is gone, the others are found again under the same ids.
    with db.uow() as uow:
        rerun = service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY1,
                                           lines=bill.head(2), records=ours)
        uow.commit()
    assert rerun.id != first.id
    after = items(db, tenant.id)
    assert {k: v.id for k, v in after.items()} == {k: v.id for k, v in found.items()}
    assert after["amount_mismatch:pay_c"].status == "investigating"
    assert after["amount_mismatch:pay_c"].assignee == "ops@example.com"
    assert after["missing_on_platform:pay_ghost"].resolution == "mark_no_action"  # stays as it was resolved
    with db.uow(read_only=True) as uow:
        assert [n.text for n in service.list_notes(uow, tenant.id, after["amount_mismatch:pay_c"].id)] == [
            "asked the channel"]

    # Next day's bill shows pay_b: the open item of day 1 is resolved by a late match.
    with db.uow() as uow:
        day2 = service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY2,
                                          lines=lines((1, "pay_b", 200), day=DAY2), records=records())
        uow.commit()
    assert day2.late_matched_count == 1 and day2.counts["by_class"] == {}
    with db.uow() as uow:  # re-running day 2 sees the same inputs (the late-matched record included)
        assert service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY2,
                                          lines=lines((1, "pay_b", 200), day=DAY2), records=records()).id == day2.id
    late = items(db, tenant.id)["missing_at_channel:pay_b"]
    assert late.status == "resolved" and late.resolution == "late_match"
    with db.uow(read_only=True) as uow:
        rules = [m.rule for m in uow.session.query(ReconMatch).filter(ReconMatch.run_id == day2.id)]
        assert rules == ["late_match"]
        assert uow.session.query(ReconRun).count() == 3
        assert uow.session.query(Discrepancy).count() == 3
        # Another tenant sees none of it.
        assert service.list_discrepancies(uow, other_tenant.id) == []
        with pytest.raises(NotFound):
            service.get_discrepancy(uow, other_tenant.id, late.id)
        with pytest.raises(NotFound):
            service.get_run(uow, other_tenant.id, day2.id)


def _balance(db: Database, tenant_id: str, code: str) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, "CNY")
        assert account is not None
        return ledger.balances(account).posted


def _add_channel(db: Database, tenant_id: str, code: str) -> None:
    from finloop.payments.models import Channel

    with db.uow() as uow:
        now = uow.clock.now()
        uow.session.add(Channel(id=uow.ids.new("channel"), tenant_id=tenant_id, code=code, provider="generic",
                                base_url="http://sandbox", created_at=now, updated_at=now))
        uow.commit()


def test_resolutions_post_balanced_write_offs_once(db: Database, tenant: TenantHandle) -> None:
    _add_channel(db, tenant.id, "wx")
    late_at = AT.replace(hour=23, minute=50)
    ours = records(("pay_short", 1000), ("pay_late", 70))
    ours = ours.with_columns(occurred_at=pl.when(pl.col("record_id") == "pay_late").then(pl.lit(late_at))
                             .otherwise(pl.col("occurred_at")))
    from dataclasses import replace

    from finloop.reconciliation.matching import MatchConfig

    config = replace(MatchConfig(), timing_from=late_at - timedelta(minutes=30))
    with db.uow() as uow:
        service.run_reconciliation(uow, tenant.id, source="wx", business_date=DAY1, records=ours, config=config,
                                   lines=lines((1, "pay_short", 990), (2, "pay_extra", 40)))
        uow.commit()
    found = items(db, tenant.id)
    short, extra, late = (found["amount_mismatch:pay_short"], found["missing_on_platform:pay_extra"],
                          found["settlement_timing:pay_late"])
    assert (short.difference, extra.difference) == (-10, 40)
    with db.uow() as uow:
        with pytest.raises(Conflict) as error:
            service.resolve(uow, tenant.id, late.id, action="write_off")
        assert error.value.code == "action_not_allowed"
        with pytest.raises(InvalidRequest) as bad:
            service.resolve(uow, tenant.id, short.id, action="mark_no_action")
        assert bad.value.param == "reason"
        with pytest.raises(InvalidRequest):
            service.resolve(uow, tenant.id, short.id, action="explode")
        service.resolve(uow, tenant.id, late.id, action="accept_timing")
        resolved = service.resolve(uow, tenant.id, short.id, action="write_off", reason="channel rounding")
        entry_short = resolved.adjusting_entry_id
        entry_extra = service.resolve(uow, tenant.id, extra.id, action="write_off").adjusting_entry_id
        uow.commit()
    assert entry_short and entry_extra and entry_short != entry_extra
    receivable_short = channel_receivable_code("wx", shard_of("pay_short"))
    assert _balance(db, tenant.id, service.EXPENSE_CODE) == 10
    assert _balance(db, tenant.id, receivable_short) == -10
    assert _balance(db, tenant.id, service.INCOME_CODE) == 40  # signed to the account's normal side
    with db.uow() as uow:
        with pytest.raises(Conflict) as twice:
            service.resolve(uow, tenant.id, short.id, action="write_off")
        assert twice.value.code == "discrepancy_resolved"
        with pytest.raises(Conflict):
            service.assign(uow, tenant.id, short.id, assignee="x")
    with db.uow(read_only=True) as uow:
        postings = ledger.entry_postings(uow, [entry_short])[entry_short]
        assert sorted(p.amount for p in postings) == [-10, 10]


def test_a_bank_source_writes_off_against_its_bank_account(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow:  # "custody" is no channel: a bank statement's source
        service.run_reconciliation(uow, tenant.id, source="custody", business_date=DAY1, records=records(),
                                   lines=lines((1, "po_unknown", 500)))
        item = service.list_discrepancies(uow, tenant.id)[0]
        assert item.discrepancy_class == "missing_on_platform"
        service.resolve(uow, tenant.id, item.id, action="write_off")
        uow.commit()
    assert _balance(db, tenant.id, "assets:bank:custody") == 500
    assert _balance(db, tenant.id, service.INCOME_CODE) == 500


def test_source_is_validated(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as error:
            service.run_reconciliation(uow, tenant.id, source="", business_date=DAY1, lines=lines(),
                                       records=records())
        assert error.value.param == "source"
