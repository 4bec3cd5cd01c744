"""The console's Reports pages: the catalogue, each report with its chart and table, CSV, print, bad parameters."""

from __future__ import annotations

import csv
import io

from markupsafe import escape

from finloop.db.uow import Database
from finloop.reports.service import REPORTS
from tests.conftest import TenantHandle, make_tenant
from tests.console.conftest import sign_in
from tests.reports.builders import FROM, TO, ledger_day, pay
from tests.reports.test_credit import small_book

WINDOW = f"from={FROM}&to={TO}"


def test_the_catalogue_links_every_report(staff_factory) -> None:  # type: ignore[no-untyped-def]
    page = staff_factory("finance").get("/console/reports")
    assert page.status_code == 200
    for report in REPORTS:
        assert f'href="/console/reports/{report.name}"' in page.text


def test_every_report_page_renders(staff_factory) -> None:  # type: ignore[no-untyped-def]
    staff = staff_factory("finance")
    for report in REPORTS:
        page = staff.get(f"/console/reports/{report.name}?{WINDOW}")
        assert page.status_code == 200, (report.name, page.text[-800:])
        assert f"<h1>{escape(report.title)}</h1>" in page.text


def test_a_report_shows_its_chart_figures_csv_and_print(db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                        staff_factory) -> None:
    pay(db, tenant.id, amount=10_000, channel="alipay", fee=60)
    pay(db, tenant.id, amount=7_000, channel="wechat")
    ledger_day(db, tenant.id)
    staff = staff_factory("finance")
    page = staff.get(f"/console/reports/channel-statements?{WINDOW}")
    assert '<svg class="chart"' in page.text
    assert "CNY 99.40" in page.text  # 100.00 less the 0.60 fee
    assert f"/console/reports/channel-statements?from={FROM}&amp;to={TO}&amp;format=csv" in page.text
    assert "print=1" in page.text and 'class="side"' in page.text
    exported = staff.get(f"/console/reports/channel-statements?{WINDOW}&format=csv")
    lines = list(csv.reader(io.StringIO(exported.text)))
    assert lines[0][:3] == ["day", "channel", "currency"]
    assert [(line[1], line[-1]) for line in lines[1:]] == [("alipay", "9940"), ("wechat", "7000")]
    printable = staff.get(f"/console/reports/revenue-by-source?{WINDOW}&print=1")
    assert printable.status_code == 200
    assert 'class="side"' not in printable.text and "CNY 100.00" in printable.text


def test_bad_parameters_and_unknown_reports_show_the_error(staff_factory) -> None:  # type: ignore[no-untyped-def]
    staff = staff_factory("finance")
    bad = staff.get("/console/reports/refund-rate?from=2026-04-01&to=2026-03-01")
    assert bad.status_code == 400 and "invalid_range" in bad.text
    assert staff.get("/console/reports/nothing-here").status_code == 404


def test_another_tenants_staff_see_none_of_it(app, db: Database, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    pay(db, tenant.id, amount=9_000_000, channel="alipay")
    other = make_tenant(db, "Other Co")
    stranger = sign_in(app, db, other.id, "eve@example.com", ["finance"])
    page = stranger.get(f"/console/reports/large-transactions?{WINDOW}")
    assert page.status_code == 200 and "CNY 90,000.00" not in page.text and "Nothing here yet." in page.text


def test_credit_reports_draw_their_curves(db: Database, tenant: TenantHandle, staff_factory) -> None:  # type: ignore[no-untyped-def]
    small_book(db, tenant.id)
    staff = staff_factory("finance")
    for name in ("credit-vintage", "loan-level", "revenue-forecast", "stress-test"):
        page = staff.get(f"/console/reports/{name}?from=2025-12-01&to={TO}&months=3")
        assert page.status_code == 200 and '<svg class="chart"' in page.text, name
    assert "90+" in staff.get(f"/console/reports/loan-level?{WINDOW}").text
