"""Borrower portal service and API: a sign-in link opens one session, once, before it expires, and is stored only
as a digest; a session ends at its expiry or at sign-out; a borrower reaches only their own loans and
applications; messages go both ways, and bad input writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import InvalidRequest, NotFound, Unauthenticated
from finloop.credit import disbursement
from finloop.credit.portal import service as portal
from finloop.credit.portal.models import PortalLink, PortalMessage
from finloop.credit.portal.service import BorrowerSession
from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle, make_tenant
from tests.credit.conftest import make_applicant
from tests.credit.servicing.conftest import bank, make_loan  # noqa: F401 - the bank fixture disburses the loan


@pytest.fixture
def api(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def applicant(db: Database, tenant_id: str, reference: str = "bob") -> str:
    return make_applicant(db, tenant_id, reference, national_id="110101199003070038").applicant_id


def issue(db: Database, tenant_id: str, applicant_id: str, **kwargs: int) -> tuple[str, str]:
    with db.uow() as uow:
        link, token = portal.issue_link(uow, tenant_id, applicant_id, actor="test", **kwargs)
        uow.commit()
        return link.id, token


def open_session(db: Database, token: str) -> str:
    with db.uow() as uow:
        _, session_token = portal.open_session(uow, token)
        uow.commit()
        return session_token


def session_of(db: Database, session_token: str) -> BorrowerSession:
    with db.uow(read_only=True) as uow:
        return portal.session_of(uow, session_token)


def link_row(db: Database, link_id: str) -> PortalLink:
    with db.uow(read_only=True) as uow:
        row = uow.session.get(PortalLink, link_id)
        assert row is not None
        uow.session.expunge(row)
        return row


def messages_count(db: Database) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(PortalMessage)) or 0)


# ---------------------------------------------------------------------------------------------- links and sessions


def test_a_link_opens_one_session_and_is_kept_only_as_a_digest(db: Database, tenant: TenantHandle) -> None:
    applicant_id = applicant(db, tenant.id)
    link_id, token = issue(db, tenant.id, applicant_id)
    stored = link_row(db, link_id)
    assert token not in (stored.token_digest, stored.session_digest) and len(stored.token_digest) == 64
    assert stored.used_at is None

    session_token = open_session(db, token)
    borrower = session_of(db, session_token)
    assert (borrower.session_id, borrower.tenant_id, borrower.applicant_id) == (link_id, tenant.id, applicant_id)
    assert borrower.actor == f"borrower:{applicant_id}"
    used = link_row(db, link_id)
    assert used.used_at is not None and used.session_digest not in (None, session_token)

    with pytest.raises(Unauthenticated) as reused:
        open_session(db, token)
    assert reused.value.code == "portal_link_used"
    assert link_row(db, link_id).session_digest == used.session_digest  # the first session stands


def test_an_expired_or_unknown_link_opens_nothing(db: Database, tenant: TenantHandle, clock: FrozenClock) -> None:
    link_id, token = issue(db, tenant.id, applicant(db, tenant.id), expires_in_seconds=120)
    clock.advance(timedelta(seconds=121))
    with pytest.raises(Unauthenticated) as expired:
        open_session(db, token)
    assert expired.value.code == "portal_link_expired"
    assert link_row(db, link_id).used_at is None
    with pytest.raises(Unauthenticated) as unknown:
        open_session(db, token + "x")
    assert unknown.value.code == "portal_link_invalid"


def test_a_session_ends_at_its_expiry_and_at_sign_out(db: Database, tenant: TenantHandle,
                                                      clock: FrozenClock) -> None:
    applicant_id = applicant(db, tenant.id)
    first = open_session(db, issue(db, tenant.id, applicant_id)[1])
    clock.advance(timedelta(seconds=portal.SESSION_SECONDS - 1))
    session_of(db, first)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated) as ended:
        session_of(db, first)
    assert ended.value.code == "portal_session_ended"

    second = open_session(db, issue(db, tenant.id, applicant_id)[1])
    with db.uow() as uow:
        portal.sign_out(uow, portal.session_of(uow, second))
        uow.commit()
    with pytest.raises(Unauthenticated):
        session_of(db, second)
    with pytest.raises(Unauthenticated):
        session_of(db, "")


def test_a_link_needs_a_sane_expiry_and_the_tenants_own_applicant(db: Database, tenant: TenantHandle) -> None:
    applicant_id = applicant(db, tenant.id)
    for bad in (59, 3601, True):
        with pytest.raises(InvalidRequest) as refused, db.uow() as uow:
            portal.issue_link(uow, tenant.id, applicant_id, expires_in_seconds=bad, actor="test")
        assert refused.value.code == "invalid_expiry"
    other = make_tenant(db, "Other Co")
    with pytest.raises(NotFound), db.uow() as uow:
        portal.issue_link(uow, other.id, applicant_id, actor="test")
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(PortalLink)) == 0


# ---------------------------------------------------------------------------------------------- scope


def test_a_borrower_reaches_only_their_own_loans_and_applications(db: Database, tenant: TenantHandle,
                                                                  bank: object) -> None:  # noqa: F811
    loan_id = make_loan(db, tenant.id)
    with db.uow(read_only=True) as uow:
        loan = disbursement.get_loan(uow, tenant.id, loan_id)
        owner, application_id = loan.applicant_id, loan.application_id
    mine = session_of(db, open_session(db, issue(db, tenant.id, owner)[1]))
    theirs = session_of(db, open_session(db, issue(db, tenant.id, applicant(db, tenant.id))[1]))
    with db.uow(read_only=True) as uow:
        assert portal.get_loan(uow, mine, loan_id).id == loan_id
        assert [row.id for row in portal.loans_of(uow, mine)] == [loan_id]
        assert portal.get_application(uow, mine, application_id).id == application_id
        assert portal.loans_of(uow, theirs) == [] and portal.applications_of(uow, theirs) == []
        with pytest.raises(NotFound) as loan_refused:
            portal.get_loan(uow, theirs, loan_id)
        assert loan_refused.value.code == "loan_not_found"
        with pytest.raises(NotFound) as application_refused:
            portal.get_application(uow, theirs, application_id)
        assert application_refused.value.code == "application_not_found"


# ---------------------------------------------------------------------------------------------- messages


def test_messages_go_both_ways_in_order(db: Database, tenant: TenantHandle) -> None:
    applicant_id = applicant(db, tenant.id)
    with db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="borrower", body="  When is my next due date?\r\n"
                            "Thanks ", actor=portal.borrower_actor(applicant_id))
        portal.post_message(uow, tenant.id, applicant_id, sender="staff", body="On the 2nd.", actor="user:u1")
        uow.commit()
    with db.uow(read_only=True) as uow:
        rows = portal.list_messages(uow, tenant.id, applicant_id)
        assert [(m.sender, m.body) for m in rows] == [("borrower", "When is my next due date?\nThanks"),
                                                      ("staff", "On the 2nd.")]
        assert [m.id for m in portal.recent_messages(uow, tenant.id, applicant_id, limit=1)] == [rows[1].id]


@pytest.mark.parametrize(("body", "code"), [("   ", "parameter_missing"), ("x" * 2001, "invalid_text"),
                                            ("bell\x07", "invalid_text")])
def test_a_bad_message_writes_nothing(db: Database, tenant: TenantHandle, body: str, code: str) -> None:
    applicant_id = applicant(db, tenant.id)
    with pytest.raises(InvalidRequest) as refused, db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="borrower", body=body, actor="test")
    assert refused.value.code == code
    assert messages_count(db) == 0


# ---------------------------------------------------------------------------------------------- the API


def test_the_platform_issues_a_link_whose_token_is_shown_once(db: Database, tenant: TenantHandle,
                                                              api: TestClient) -> None:
    applicant_id = applicant(db, tenant.id)
    headers = {**tenant.headers, "Idempotency-Key": "link-1"}
    first = api.post(f"/v1/credit/applicants/{applicant_id}/portal-links", headers=headers,
                     json={"expires_in_seconds": 300})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["object"] == "credit_portal_link" and body["applicant_id"] == applicant_id
    assert body["url"] == f"/console/portal/sign-in?token={body['token']}"
    replay = api.post(f"/v1/credit/applicants/{applicant_id}/portal-links", headers=headers,
                      json={"expires_in_seconds": 300})
    assert replay.status_code == 201 and replay.json()["id"] == body["id"]
    assert replay.json()["token"] is None and replay.json()["url"] is None
    assert session_of(db, open_session(db, body["token"])).applicant_id == applicant_id


def test_link_requests_are_authenticated_scoped_and_checked(db: Database, tenant: TenantHandle,
                                                             api: TestClient) -> None:
    applicant_id = applicant(db, tenant.id)
    path = f"/v1/credit/applicants/{applicant_id}/portal-links"
    assert api.post(path).status_code == 401
    other = make_tenant(db, "Other Co")
    missing = api.post(path, headers=other.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "applicant_not_found"
    bad = api.post(path, headers=tenant.headers, json={"expires_in_seconds": 5})
    assert bad.status_code == 400
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="auditor", role=Role.AUDITOR, actor="test")
        uow.commit()
    refused = api.post(path, headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 403
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(PortalLink)) == 0


def test_support_reads_and_answers_the_conversation(db: Database, tenant: TenantHandle, api: TestClient) -> None:
    applicant_id = applicant(db, tenant.id)
    with db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="borrower", body="Can I repay early?",
                            actor=portal.borrower_actor(applicant_id))
        uow.commit()
    path = f"/v1/credit/applicants/{applicant_id}/portal-messages"
    answer = api.post(path, headers=tenant.headers, json={"body": "Yes, any time, without a fee."})
    assert answer.status_code == 201, answer.text
    assert answer.json()["sender"] == "staff" and answer.json()["actor"].startswith("key:")
    listed = api.get(path, headers=tenant.headers)
    assert listed.status_code == 200
    assert [(m["sender"], m["body"]) for m in listed.json()["data"]] == [
        ("borrower", "Can I repay early?"), ("staff", "Yes, any time, without a fee.")]
    inbox = api.get("/v1/credit/portal-messages?sender=borrower", headers=tenant.headers)
    assert [(m["applicant_id"], m["body"]) for m in inbox.json()["data"]] == [(applicant_id, "Can I repay early?")]
    newest = api.get("/v1/credit/portal-messages?limit=1", headers=tenant.headers).json()
    assert [m["sender"] for m in newest["data"]] == ["staff"] and newest["has_more"]
    older = api.get(f"/v1/credit/portal-messages?limit=1&starting_after={newest['next_cursor']}",
                    headers=tenant.headers).json()
    assert [m["sender"] for m in older["data"]] == ["borrower"] and not older["has_more"]
    assert api.get("/v1/credit/portal-messages?sender=robot", headers=tenant.headers).status_code == 400
    assert api.post(path, headers=tenant.headers, json={"body": "   "}).status_code == 400
    assert api.post(path, headers=tenant.headers, json={"body": "x", "extra": 1}).status_code == 400
    other = make_tenant(db, "Other Co")
    assert api.get(path, headers=other.headers).status_code == 404
    assert api.get("/v1/credit/portal-messages", headers=other.headers).json()["data"] == []
    assert api.post(path, headers=other.headers, json={"body": "hello"}).status_code == 404
    assert messages_count(db) == 2
