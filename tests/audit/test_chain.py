"""The audit chain: it verifies after real changes, and tampering with a row directly in the database
is reported at the broken seq by the service, the API and ``finloop audit verify``."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from finloop.audit import service as audit
from finloop.audit.models import AuditEvent
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.tenancy.helpers import error, key_headers


def _changes(db, tenant_id: str) -> None:
    """Events 3 to 6 of the tenant's chain (1 is its creation, 2 its first key)."""
    admin = tenancy.system_principal(tenant_id, "test")
    with db.uow() as uow:
        tenancy.update_business_time(uow, admin, timezone="Asia/Shanghai", cutoff="23:00")
        tenancy.set_holiday(uow, admin, date(2026, 10, 1), "National Day")
        tenancy.create_user(uow, tenant_id, email="ana@example.com", password="a long enough secret",
                            roles=["finance"], actor="test")
        uow.commit()
    with db.uow() as uow:
        tenancy.update_business_time(uow, admin, weekend=[6])
        uow.commit()


def _verify(db, tenant_id: str) -> audit.ChainReport:
    with db.uow(read_only=True) as uow:
        return audit.verify(uow, tenant_id)


def _run(cli: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    from finloop.cli import app

    return cli.invoke(app, ["audit", "verify", *args], env={"COLUMNS": "200"})


def test_chain_verifies_after_several_changes(db, tenant):
    _changes(db, tenant.id)
    report = _verify(db, tenant.id)
    assert (report.ok, report.events, report.broken_at_seq) == (True, 6, None)
    with db.uow(read_only=True) as uow:
        events = [(e.seq, e.prev_hash, e.hash) for e in audit.list_events(uow, tenant.id)]
    assert [seq for seq, _, _ in events] == [1, 2, 3, 4, 5, 6]
    assert [prev for _, prev, _ in events] == [audit.GENESIS] + [digest for _, _, digest in events[:-1]]


TAMPERING = {
    "after": (lambda tenant_id: update(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq == 4)
              .values(after={"day": "2026-10-01", "name": "Any Day"}), "the event's content was changed"),
    "delete": (lambda tenant_id: delete(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq == 4),
               "an event is missing"),
    "hash": (lambda tenant_id: update(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq == 4)
             .values(hash="f" * 64), "the event's content was changed"),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_tampering_is_reported_at_the_broken_seq(db, client, cli, tenant, other_tenant, tampering):
    _changes(db, tenant.id)
    _changes(db, other_tenant.id)
    statement, reason = TAMPERING[tampering]
    with db.engine.begin() as connection:
        assert connection.execute(statement(tenant.id)).rowcount == 1

    report = _verify(db, tenant.id)
    assert (report.ok, report.broken_at_seq, report.reason, report.events) == (False, 4, reason, 3)
    assert _verify(db, other_tenant.id).ok

    auditor = key_headers(db, tenant.id, Role.AUDITOR)
    assert client.get("/v1/audit-events/verify", headers=auditor).json() == {
        "object": "audit_chain_report", "tenant_id": tenant.id, "events": 3, "ok": False, "broken_at_seq": 4,
        "reason": reason}
    assert client.get("/v1/audit-events/verify", headers=other_tenant.headers).json()["ok"] is True

    everything = _run(cli)
    assert everything.exit_code == 1, everything.output
    lines = {line.split()[1]: line for line in everything.output.splitlines() if "ten_" in line}
    assert "broken" in lines[tenant.id] and " 4 " in lines[tenant.id]
    assert " ok " in lines[other_tenant.id]
    assert _run(cli, "--tenant", other_tenant.id).exit_code == 0
    assert _run(cli, "--tenant", tenant.id).exit_code == 1


def test_a_tampered_chain_breaks_at_the_first_changed_event_even_when_later_hashes_are_redone(db, tenant):
    # Rewriting one event and re-linking only the next one still leaves the event itself failing.
    _changes(db, tenant.id)
    with db.engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.seq == 5)
                           .values(actor="someone else"))
    assert _verify(db, tenant.id).broken_at_seq == 5


def test_tenant_whose_whole_chain_was_deleted_is_broken(db, cli, tenant):
    with db.engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.tenant_id == tenant.id))
    report = _verify(db, tenant.id)
    assert (report.ok, report.broken_at_seq) == (False, 1)
    assert _run(cli).exit_code == 1


def test_float_content_verifies_on_both_databases(db, tenant):
    # JSONB gives 1e20 back as 100000000000000000000: floats are recorded as their repr to stay verifiable.
    with db.uow() as uow:
        event = audit.record(uow, tenant.id, actor="test", action="rule.updated", object_type="rule",
                             after={"threshold": 1e20, "ratio": 0.1, "nested": [{"x": 1.5}], "count": 10**20})
        uow.commit()
    assert event.after == {"threshold": "1e+20", "ratio": "0.1", "nested": [{"x": "1.5"}], "count": 10**20}
    assert _verify(db, tenant.id).ok


def test_cli_verifies_every_chain_and_exits_zero(db, cli, tenant, other_tenant):
    _changes(db, tenant.id)
    result = _run(cli)
    assert result.exit_code == 0, result.output
    assert tenant.id in result.output and other_tenant.id in result.output
    assert "2 chains verified" in result.output


def test_cli_refuses_an_unknown_tenant(db, cli, tenant):
    result = _run(cli, "--tenant", "ten_nope")
    assert result.exit_code == 2
    assert "No tenant 'ten_nope'" in result.output


# ---------------------------------------------------------------------------------------------- API


def test_audit_events_page_by_seq_and_filter_by_object(db, client, tenant):
    _changes(db, tenant.id)
    h = tenant.headers
    first = client.get("/v1/audit-events", params={"limit": 4}, headers=h).json()
    assert [e["seq"] for e in first["data"]] == [1, 2, 3, 4] and first["next_cursor"] == "4"
    rest = client.get("/v1/audit-events", params={"starting_after": "4"}, headers=h).json()
    assert [e["seq"] for e in rest["data"]] == [5, 6] and rest["has_more"] is False
    tenant_events = client.get("/v1/audit-events", params={"object_type": "tenant", "object_id": tenant.id},
                               headers=h).json()["data"]
    assert [(e["seq"], e["action"], e["actor"]) for e in tenant_events] == [
        (1, "tenant.created", "test"), (3, "tenant.business_time_changed", "test"),
        (6, "tenant.business_time_changed", "test")]
    assert tenant_events[2]["before"]["weekend"] == [5, 6] and tenant_events[2]["after"]["weekend"] == [6]


def test_audit_events_refuse_a_bad_cursor(client, tenant):
    for cursor in ("abc", "-1", "9" * 19):
        response = client.get("/v1/audit-events", params={"starting_after": cursor}, headers=tenant.headers)
        assert error(response) == (400, "invalid_cursor"), cursor


def test_audit_events_show_only_the_callers_tenant(db, client, tenant, other_tenant):
    _changes(db, other_tenant.id)
    events = client.get("/v1/audit-events", headers=tenant.headers).json()["data"]
    assert [e["action"] for e in events] == ["tenant.created", "api_key.created"]
    assert events[0]["object_id"] == tenant.id
