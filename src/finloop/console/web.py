"""Rendering: templates, formatting filters, list pages (search, filters, pagination, CSV export).

A list is declared once as columns over a query; the same declaration draws the HTML table and writes
the CSV export, so the two never disagree about what a row holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from finloop.core.errors import InvalidRequest
from finloop.core.money import currency, is_currency
from finloop.ledger.models import Entry

#: A select of any columns: a list's query may join several tables.
AnySelect = Select[*tuple[Any, ...]]

#: Rows an export writes at most: a larger one belongs to ``finloop export parquet``.
EXPORT_LIMIT = 100_000
PAGE_SIZES = (25, 50, 100, 200)


def money(minor: int | None, code: str | None = None) -> str:
    """``CNY 1,234.56`` from minor units, with the currency's own exponent."""
    if minor is None:
        return "—"
    exponent = currency(code).exponent if code and is_currency(code) else 2
    major = Decimal(minor).scaleb(-exponent)
    text = f"{major:,.{exponent}f}"
    return f"{code} {text}" if code else text


def major(minor: int | None, code: str | None = None) -> str:
    """The plain decimal amount a CSV or a form holds: ``1234.56``."""
    if minor is None:
        return ""
    exponent = currency(code).exponent if code and is_currency(code) else 2
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


def percent(value: Decimal | float | None, places: int = 1) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)) * 100:.{places}f}%"


_BADGES = {
    "good": {"succeeded", "active", "approved", "matched", "settled", "paid", "closed", "resolved", "published",
             "current", "healthy", "approve", "accepted", "ok", "completed", "posted", "champion", "signed",
             "disbursed", "repaid", "allow", "pass", "success", "paid_off", "performing", "won", "live"},
    "warn": {"pending", "requires_approval", "processing", "in_progress", "open", "review", "requires_action",
             "half_open", "draft", "scheduled", "overdue", "partially_refunded", "investigating", "held", "frozen",
             "pending_approval", "unknown"},
    "bad": {"failed", "rejected", "canceled", "declined", "written_off", "unmatched", "open_circuit", "blocked",
            "deny", "block", "returned", "disputed", "charged_off", "expired", "revoked", "disabled", "failure",
            "lost"},
}


def badge(status: str | None) -> Markup:
    if status is None:
        return Markup("—")
    kind = next((name for name, values in _BADGES.items() if status in values), "plain")
    return Markup('<span class="badge badge-{}">{}</span>').format(kind, status.replace("_", " "))


#: The CSRF token of the page being rendered: macros imported without context (``csrf()``) read it here.
_rendering_csrf: ContextVar[str] = ContextVar("rendering_csrf", default="")

templates = Environment(loader=PackageLoader("finloop.console", "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
templates.filters.update(money=money, major=major, when=when, percent=percent, badge=badge)
templates.globals["csrf_token"] = _rendering_csrf.get


def html(request: Request, template: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page. ``staff`` (the signed-in user, their permissions and CSRF token) reaches every template
    through ``request.state`` so that forms and the navigation can use it."""
    staff = getattr(request.state, "staff", None)
    flash = request.cookies.get(FLASH_COOKIE)
    token = _rendering_csrf.set(staff.csrf if staff is not None else "")
    try:
        body = templates.get_template(template).render(request=request, staff=staff, flash=flash, **values)
    finally:
        _rendering_csrf.reset(token)
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


FLASH_COOKIE = "fl_flash"

#: Every console page: scripts only from the console itself (no inline script, no other origin), never framed
#: (clickjacking), forms post only here, nothing cached or sent as a referrer beyond this origin. Inline styles
#: stay allowed: a few cells are shaded by value.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def flash(response: Response, message: str) -> Response:
    """A one-line notice shown by the next page (what an action did)."""
    response.set_cookie(FLASH_COOKIE, message[:300], path="/console", httponly=True, samesite="strict")
    return response


# ---------------------------------------------------------------------------------------------- listings


@dataclass(frozen=True)
class Column:
    label: str
    #: The raw value: what the CSV holds, and what the page shows unless ``show`` says otherwise.
    value: Callable[[Any], Any]
    show: Callable[[Any], Any] | None = None
    link: Callable[[Any], str | None] | None = None
    numeric: bool = False

    def cell(self, row: Any) -> Any:
        if self.show is not None:
            return self.show(row)
        value = self.value(row)
        if value is None or isinstance(value, datetime | date):
            return when(value)
        return value


@dataclass(frozen=True)
class Filter:
    """One control above a list. ``options`` makes it a choice; without them it is free text (or a date
    with ``kind="date"``); ``apply`` narrows the query by the chosen value."""

    name: str
    label: str
    apply: Callable[[AnySelect, str], AnySelect]
    options: Sequence[tuple[str, str]] | None = None
    kind: str = "text"


@dataclass
class Listing:
    """What a list page shows: one page of rows, the filters as chosen, and the links to move on."""

    title: str
    columns: Sequence[Column]
    rows: list[Any]
    filters: Sequence[Filter]
    chosen: dict[str, str]
    page: int
    size: int
    total: int
    search_label: str | None
    path: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def link(self, **changes: Any) -> str:
        values: dict[str, Any] = {**self.chosen, "page": self.page, "size": self.size, **changes}
        return self.path + "?" + urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _chosen(request: Request, filters: Sequence[Filter], searchable: bool) -> dict[str, str]:
    names = [f.name for f in filters] + (["q"] if searchable else [])
    chosen = {}
    for name in names:
        value = request.query_params.get(name, "").strip()[:200]
        if value:
            chosen[name] = value
    return chosen


def _int(text: str | None, default: int, lowest: int, highest: int) -> int:
    try:
        return min(max(int(text or default), lowest), highest)
    except ValueError:
        return default


def listing(request: Request, session: Session, query: AnySelect, *, title: str, columns: Sequence[Column],
            order_by: Sequence[Any], filters: Sequence[Filter] = (),
            search: Callable[[str], Any] | None = None, search_label: str | None = None,
            scalars: bool = True, export_name: str | None = None,
            template: str = "list.html", **extra: Any) -> Response:
    """A searchable, filterable, paginated list, or its CSV export when asked with ``?format=csv``."""
    chosen = _chosen(request, filters, search is not None)
    for item in filters:
        if item.name in chosen:
            query = item.apply(query, chosen[item.name])
    if search is not None and "q" in chosen:
        query = query.where(search(chosen["q"]))
    if request.query_params.get("format") == "csv":
        rows = _fetch(session, query.order_by(*order_by).limit(EXPORT_LIMIT), scalars)
        return csv_response(export_name or title.lower().replace(" ", "-"), columns, rows)
    size = _int(request.query_params.get("size"), PAGE_SIZES[0], 1, PAGE_SIZES[-1])
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    page = _int(request.query_params.get("page"), 1, 1, max(1, -(-total // size)))
    rows = _fetch(session, query.order_by(*order_by).offset((page - 1) * size).limit(size), scalars)
    result = Listing(title=title, columns=columns, rows=rows, filters=filters, chosen=chosen, page=page, size=size,
                     total=total, search_label=search_label if search is not None else None,
                     path=request.url.path, extra=extra)
    return html(request, template, listing=result, **extra)


def _fetch(session: Session, query: AnySelect, scalars: bool) -> list[Any]:
    return list(session.scalars(query)) if scalars else list(session.execute(query))


def csv_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Markup):
        return value.striptags()
    return "" if value is None else value


def csv_response(name: str, columns: Sequence[Column], rows: Iterable[Any]) -> Response:
    # The values are read now, while the rows' session is open; the response is written after it closed.
    values = [[c.value(row) for c in columns] for row in rows]
    return csv_table(name, [c.label for c in columns], values)


_CSV_CHUNK = 64 * 1024


def csv_table(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download. Cells a spreadsheet would run as a formula are quoted with a leading apostrophe."""
    def lines() -> Iterable[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_defuse(csv_value(value)) for value in row])
            if buffer.tell() >= _CSV_CHUNK:  # one body message per chunk, not per row
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    safe = "".join(ch for ch in name if ch.isalnum() or ch in "-_") or "export"
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'})


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def choice(*values: str) -> list[tuple[str, str]]:
    return [(value, value.replace("_", " ")) for value in values]


def since(column: Any) -> Callable[[AnySelect, str], AnySelect]:
    """A date filter: rows on or after the day."""
    def apply(query: AnySelect, value: str) -> AnySelect:
        return query.where(column >= _day(value))
    return apply


def until(column: Any) -> Callable[[AnySelect, str], AnySelect]:
    """A date filter: rows before the end of the day."""
    def apply(query: AnySelect, value: str) -> AnySelect:
        return query.where(column < _day(value) + timedelta(days=1))
    return apply


def _day(value: str) -> datetime:
    day = parse_day(value, param="date")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def equals(column: Any) -> Callable[[AnySelect, str], AnySelect]:
    def apply(query: AnySelect, value: str) -> AnySelect:
        return query.where(column == value)
    return apply


def parse_amount(text: str | None, code: str, *, param: str = "amount", positive: bool = True) -> int:
    """Minor units from what a person typed (``1,234.50``): more decimals than the currency has are refused,
    never rounded away."""
    exponent = currency(code).exponent
    cleaned = (text or "").strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        raise InvalidRequest(f"{text!r} is not an amount.", code="invalid_amount", param=param) from None
    if not value.is_finite():
        raise InvalidRequest(f"{text!r} is not an amount.", code="invalid_amount", param=param)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise InvalidRequest(f"{code} has {exponent} decimal places; {cleaned} has more.", code="invalid_amount",
                             param=param)
    if positive and minor <= 0:
        raise InvalidRequest("The amount must be greater than zero.", code="invalid_amount", param=param)
    return int(minor)


def parse_day(text: str, *, param: str = "day") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest("A date is YYYY-MM-DD.", code="invalid_date", param=param) from None


def reference_now(session: Session, staff: Any, clock_now: datetime) -> datetime:
    """The moment a page's default period ends at. For a demo tenant, whose data was made on a simulated
    clock, it is the last moment booked in its ledger, so a console opened on the demo shows the demo's days;
    for everyone else it is now."""
    if not staff.tenant.is_demo:
        return clock_now
    latest = session.scalar(select(func.max(Entry.effective_at)).where(Entry.tenant_id == staff.tenant_id))
    return min(latest, clock_now) if latest is not None else clock_now
