"""The reconciliation pages as staff use them: runs and their match rate, a run's matches, and the discrepancy
work queue where finance resolves items (audited) and an auditor may only read."""

from __future__ import annotations

import csv
import io
import re

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.reconciliation import discrepancies as service
from finloop.reconciliation.match_models import Discrepancy, DiscrepancyNote
from tests.conftest import TenantHandle
from tests.console.conftest import sign_in
from tests.reconciliation.test_discrepancies import DAY1, DAY2, lines, records


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _reconcile(db: Database, tenant_id: str) -> tuple[str, str, dict[str, str]]:
    """Day 1 of wx (pay_a matches, pay_c is 10 short, pay_ghost is unknown to us, pay_b is missing at the
    channel) and day 2 of alipay (all matched); the run ids and the discrepancies by reference."""
    with db.uow() as uow:
        wx = service.run_reconciliation(uow, tenant_id, source="wx", business_date=DAY1,
                                        lines=lines((1, "pay_a", 100), (2, "pay_c", 290), (3, "pay_ghost", 50)),
                                        records=records(("pay_a", 100), ("pay_b", 200), ("pay_c", 300)))
        alipay = service.run_reconciliation(uow, tenant_id, source="alipay", business_date=DAY2,
                                            lines=lines((1, "pay_x", 10), day=DAY2), records=records(("pay_x", 10)))
        found = {d.record_id or d.our_reference or "": d.id for d in service.list_discrepancies(uow, tenant_id)}
        uow.commit()
        return wx.id, alipay.id, found


def _item(db: Database, discrepancy_id: str) -> Discrepancy:
    with db.uow(read_only=True) as uow:
        item = uow.session.get(Discrepancy, discrepancy_id)
        assert item is not None
        uow.session.expunge(item)
        return item


def _console_events(db: Database) -> list[AuditEvent]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(AuditEvent).filter(AuditEvent.action.startswith("console.discrepancy")))


def test_runs_show_their_figures_chart_filters_and_csv(db: Database, tenant: TenantHandle,
                                                       staff_factory) -> None:  # type: ignore[no-untyped-def]
    wx, alipay, found = _reconcile(db, tenant.id)
    auditor = staff_factory("auditor")
    page = auditor.get("/console/reconciliation")
    assert page.status_code == 200
    assert wx in page.text and alipay in page.text
    assert "66.7%" in page.text and "100.0%" in page.text
    assert '<svg class="chart"' in page.text and "Match rate per run" in page.text
    only_wx = auditor.get("/console/reconciliation", params={"source": "wx"})
    assert wx in only_wx.text and alipay not in only_wx.text
    assert wx not in auditor.get("/console/reconciliation", params={"from": DAY2.isoformat()}).text
    assert auditor.get("/console/reconciliation", params={"from": "02/03/2026"}).status_code == 400

    exported = auditor.get("/console/reconciliation", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    by_run = {row["Run"]: row for row in _rows(exported.text)}
    assert set(by_run) == {wx, alipay}
    assert (by_run[wx]["Matched lines"], by_run[wx]["Unmatched lines"], by_run[wx]["Match rate"]) == (
        "2", "1", "0.666667")
    assert by_run[wx]["Discrepancies"] == "3" and by_run[alipay]["Match rate"] == "1.000000"

    detail = auditor.get(f"/console/reconciliation/runs/{wx}")
    assert detail.status_code == 200
    assert "66.7%" in detail.text and found["pay_ghost"] in detail.text and "amount mismatch" in detail.text
    matches = _rows(auditor.get(f"/console/reconciliation/runs/{wx}", params={"format": "csv"}).text)
    assert {row["Record"] for row in matches} == {"pay_a", "pay_c"}


def test_the_work_queue_filters_by_status_type_channel_and_day(db: Database, tenant: TenantHandle,
                                                               staff_factory) -> None:  # type: ignore[no-untyped-def]
    _, _, found = _reconcile(db, tenant.id)
    with db.uow() as uow:
        service.resolve(uow, tenant.id, found["pay_b"], action="accept_timing", actor="test")
        uow.commit()
    auditor = staff_factory("auditor")

    def shown(**params: str) -> set[str]:
        answer = auditor.get("/console/reconciliation/discrepancies", params={**params, "format": "csv"})
        assert answer.status_code == 200
        return {row["Discrepancy"] for row in _rows(answer.text)}

    assert shown() == {found["pay_b"], found["pay_c"], found["pay_ghost"]}
    assert shown(status="open") == {found["pay_c"], found["pay_ghost"]}
    assert shown(type="missing_on_platform") == {found["pay_ghost"]}
    assert shown(source="wx", status="resolved") == {found["pay_b"]}
    assert shown(source="alipay") == set()
    assert shown(day=DAY2.isoformat()) == set() and len(shown(day=DAY1.isoformat())) == 3
    assert shown(q="pay_c") == {found["pay_c"]}
    page = auditor.get("/console/reconciliation/discrepancies", params={"type": "amount_mismatch"})
    assert page.status_code == 200 and found["pay_c"] in page.text and found["pay_ghost"] not in page.text
    assert "CNY -0.10" in page.text


def test_finance_resolves_items_through_the_forms_and_each_is_audited(
        db: Database, tenant: TenantHandle, staff_factory) -> None:  # type: ignore[no-untyped-def]
    _, _, found = _reconcile(db, tenant.id)
    finance = staff_factory("finance")
    ghost, short = found["pay_ghost"], found["pay_c"]
    page = finance.get(f"/console/reconciliation/discrepancies/{ghost}")
    assert page.status_code == 200
    for button in ("Write off", "Mark no action", "Assign", "Add note"):
        assert re.search(rf"<button[^>]*>{button}</button>", page.text), button
    assert "Accept timing" not in page.text  # not for an unknown line
    at_channel = finance.get(f"/console/reconciliation/discrepancies/{found['pay_b']}")
    assert re.search(r"<button[^>]*>Accept timing</button>", at_channel.text)

    where = f"/console/reconciliation/discrepancies/{ghost}"
    missing = finance.post(f"{where}/resolve", {"action": "mark_no_action", "reason": ""}, page=where)
    assert missing.status_code == 400 and "reason_required" in missing.text
    unknown = finance.post(f"{where}/resolve", {"action": "explode"}, page=where)
    assert unknown.status_code == 400 and "invalid_choice" in unknown.text
    assert _item(db, ghost).status == "open" and _console_events(db) == []

    assigned = finance.post(f"{where}/assign", {"assignee": "ops@example.com"}, page=where)
    assert assigned.status_code == 303 and assigned.headers["location"] == where
    noted = finance.post(f"{where}/notes", {"text": "a test line of the channel"}, page=where)
    assert noted.status_code == 303
    done = finance.post(f"{where}/resolve", {"action": "mark_no_action", "reason": "channel test line"}, page=where)
    assert done.status_code == 303
    item = _item(db, ghost)
    assert (item.status, item.assignee, item.resolution, item.resolution_reason) == (
        "resolved", "ops@example.com", "mark_no_action", "channel test line")
    assert item.resolved_by is not None and finance.user_id in item.resolved_by
    events = {e.action: e for e in _console_events(db)}
    assert set(events) == {"console.discrepancy.assign", "console.discrepancy.note",
                           "console.discrepancy.mark_no_action"}
    assert {e.object_id for e in events.values()} == {ghost}
    assert events["console.discrepancy.mark_no_action"].after["form"]["reason"] == "channel test line"
    resolved_page = finance.get(where)
    assert "channel test line" in resolved_page.text and "a test line of the channel" in resolved_page.text
    short_page = f"/console/reconciliation/discrepancies/{short}"
    again = finance.post(f"{where}/resolve", {"action": "write_off"}, page=short_page)
    assert again.status_code == 409 and "discrepancy_resolved" in again.text

    # A write-off posts the difference, and the item links to the entry.
    written = finance.post(f"{short_page}/resolve", {"action": "write_off", "reason": "channel rounding"},
                           page=short_page)
    assert written.status_code == 303
    entry_id = _item(db, short).adjusting_entry_id
    assert entry_id is not None
    with db.uow(read_only=True) as uow:
        assert sorted(p.amount for p in ledger.entry_postings(uow, [entry_id])[entry_id]) == [-10, 10]
    assert f"/console/ledger/entries/{entry_id}" in finance.get(short_page).text
    assert len(_console_events(db)) == 4


def test_an_auditor_may_read_but_not_resolve(db: Database, tenant: TenantHandle,
                                             staff_factory) -> None:  # type: ignore[no-untyped-def]
    _, _, found = _reconcile(db, tenant.id)
    auditor = staff_factory("auditor")
    where = f"/console/reconciliation/discrepancies/{found['pay_ghost']}"
    page = auditor.get(where)
    assert page.status_code == 200 and "Your role may not resolve" in page.text
    assert "Mark no action</button>" not in page.text
    for path, data in ((f"{where}/resolve", {"action": "mark_no_action", "reason": "x"}),
                       (f"{where}/assign", {"assignee": "me"}), (f"{where}/notes", {"text": "hello"})):
        refused = auditor.post(path, data)
        assert refused.status_code == 403 and "role_not_allowed" in refused.text
    item = _item(db, found["pay_ghost"])
    assert (item.status, item.assignee, item.resolution) == ("open", None, None)
    with db.uow(read_only=True) as uow:
        assert uow.session.query(DiscrepancyNote).count() == 0
    assert _console_events(db) == []


def test_another_tenants_runs_and_items_are_not_found(app, db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                      other_tenant: TenantHandle) -> None:
    wx, _, found = _reconcile(db, tenant.id)
    stranger = sign_in(app, db, other_tenant.id, "admin@other.example", ["admin"])
    assert stranger.get(f"/console/reconciliation/runs/{wx}").status_code == 404
    where = f"/console/reconciliation/discrepancies/{found['pay_ghost']}"
    assert stranger.get(where).status_code == 404
    assert wx not in stranger.get("/console/reconciliation").text
    assert found["pay_ghost"] not in stranger.get("/console/reconciliation/discrepancies").text
    refused = stranger.post(f"{where}/resolve", {"action": "mark_no_action", "reason": "not mine"})
    assert refused.status_code == 404
    assert _item(db, found["pay_ghost"]).status == "open" and _console_events(db) == []
