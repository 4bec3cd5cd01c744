"""The role × action matrix: documented from the code, and enforced on the server for every console form."""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

from fastapi.routing import APIRoute

from finloop.audit.models import AuditEvent
from finloop.console.cli import role_matrix
from finloop.console.routes import NAV, PAGES
from finloop.db.uow import Database

DOCS = Path(__file__).resolve().parents[2] / "docs" / "console.md"
#: Forms a person without a staff session uses: signing in and out, the customer-facing pages.
NOT_STAFF_ACTIONS = ("/console/sign-in", "/console/sign-out", "/console/checkout", "/console/portal")


def test_the_documented_matrix_is_the_one_the_code_enforces() -> None:
    text = DOCS.read_text()
    found = re.search(r"<!-- role-matrix:start -->\n(.*?)\n<!-- role-matrix:end -->", text, re.S)
    assert found, "docs/console.md lost its role matrix markers"
    assert found.group(1) == role_matrix(), "regenerate the table with `finloop console matrix`"


def _staff_forms() -> list[str]:
    paths = []
    for name in PAGES:
        for route in import_module(f"finloop.console.pages.{name}").router.routes:
            path = "/console" + route.path
            if isinstance(route, APIRoute) and "POST" in route.methods and not path.startswith(NOT_STAFF_ACTIONS):
                paths.append(re.sub(r"\{[^}]+\}", "x", path))
    return sorted(paths)


def test_an_auditor_reads_but_acts_on_nothing(db: Database, staff_factory) -> None:  # type: ignore[no-untyped-def]
    auditor = staff_factory("auditor")
    token = auditor.csrf()
    with db.uow(read_only=True) as uow:
        before = uow.session.query(AuditEvent).count()
    forms = _staff_forms()
    assert len(forms) > 20, forms  # every area has its forms
    answers = {}
    for path in forms:
        answer = auditor.client.post(path, data={"csrf_token": token}, follow_redirects=False)
        answers[path] = answer.status_code
    assert all(status in (400, 403, 404) for status in answers.values()), answers
    assert sum(status == 403 for status in answers.values()) > len(answers) // 2, answers
    with db.uow(read_only=True) as uow:
        assert uow.session.query(AuditEvent).count() == before


def test_every_role_reads_every_area(staff_factory) -> None:  # type: ignore[no-untyped-def]
    for role in ("auditor", "support", "risk_analyst", "finance", "admin"):
        user = staff_factory(role)
        answers = {href: user.get(href).status_code for href, _ in NAV}
        assert set(answers.values()) == {200}, (role, answers)
