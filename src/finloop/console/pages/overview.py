"""The overview: the day's payment volume and success rate, channel health, risk interception and the
credit portfolio at a glance. "The day" is the latest business day with payments unless one is chosen, so a
console opened on simulated data shows that data."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Integer, case, cast, func, select

from finloop.console import charts
from finloop.console.auth import CurrentStaff, database
from finloop.console.web import html, parse_day
from finloop.credit.servicing.models import LoanAccount
from finloop.payments.models import Payment
from finloop.payments.routing import service as routing
from finloop.payments.state import PaymentStatus
from finloop.risk.models import RiskDecision

router = APIRouter()

_DONE = (PaymentStatus.SUCCEEDED.value, PaymentStatus.FAILED.value)


@router.get("")
@router.get("/")
def overview(request: Request, staff: CurrentStaff, day: str = "") -> Response:
    tenant_id = staff.tenant_id
    with database(request).uow(read_only=True) as uow:
        session = uow.session
        if day:
            chosen = parse_day(day, param="day")
        else:
            latest = session.scalar(select(func.max(Payment.created_at)).where(Payment.tenant_id == tenant_id))
            chosen = latest.date() if latest else uow.clock.now().date()
        start = datetime(chosen.year, chosen.month, chosen.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        hour = func.extract("hour", Payment.created_at) if uow.dialect == "postgresql" \
            else cast(func.strftime("%H", Payment.created_at), Integer)
        # One pass over the day's payments, grouped finely; the page's figures are sums of these groups.
        groups = session.execute(
            select(Payment.status, Payment.currency, Payment.channel, hour, func.count(),
                   func.coalesce(func.sum(Payment.captured_amount), 0))
            .where(Payment.tenant_id == tenant_id, Payment.created_at >= start, Payment.created_at < end)
            .group_by(Payment.status, Payment.currency, Payment.channel, hour)).all()
        volume_by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        counts: dict[str, int] = defaultdict(int)
        hourly: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        channels: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for status, code, channel, at_hour, n, captured in groups:
            succeeded = status == PaymentStatus.SUCCEEDED.value
            counts[status] += n
            if succeeded:
                volume_by[code][0] += n
                volume_by[code][1] += captured
            if status in _DONE:
                for tally in (hourly[int(at_hour)], *([channels[channel]] if channel else [])):
                    tally[0] += n if succeeded else 0
                    tally[1] += n
        volume = [(code, n, captured) for code, (n, captured) in sorted(volume_by.items())]
        by_channel = [(code, ok, total) for code, (ok, total) in sorted(channels.items())]
        finished = sum(counts.get(status, 0) for status in _DONE)
        success = counts.get(PaymentStatus.SUCCEEDED.value, 0) / finished if finished else None
        health = routing.channel_health(uow, tenant_id)
        risk = {outcome: n for outcome, n in session.execute(select(RiskDecision.outcome, func.count()).where(
            RiskDecision.tenant_id == tenant_id, RiskDecision.decided_at >= start, RiskDecision.decided_at < end)
            .group_by(RiskDecision.outcome))}
        book = session.execute(select(
            LoanAccount.currency, func.count(), func.sum(LoanAccount.principal_outstanding),
            func.sum(case((LoanAccount.dpd > 0, LoanAccount.principal_outstanding), else_=0)),
            func.sum(case((LoanAccount.dpd > 90, LoanAccount.principal_outstanding), else_=0)))
            .where(LoanAccount.tenant_id == tenant_id, LoanAccount.principal_outstanding > 0)
            .group_by(LoanAccount.currency)).all()
    decided = sum(risk.values())
    intercepted = sum(n for outcome, n in risk.items() if outcome in ("decline", "review"))
    hourly_chart = charts.line_chart(
        {"success rate": [(f"{h:02d}", (hourly[h][0] / hourly[h][1]) if h in hourly else None) for h in range(24)]},
        title="Success rate by hour", y_format=charts.pct_axis, y_max=1.0)
    volume_chart = charts.bar_chart([(f"{h:02d}", hourly[h][1] if h in hourly else 0) for h in range(24)],
                                    title="Finished payments by hour")
    channel_chart = charts.bar_chart([(code or "—", ok / total) for code, ok, total in by_channel],
                                     title="Success rate by channel", y_format=charts.pct_axis)
    return html(request, "overview.html", day=chosen, previous=chosen - timedelta(days=1),
                following=chosen + timedelta(days=1), volume=volume, counts=counts, success=success,
                health=health, risk=risk, decided=decided, intercepted=intercepted, book=book,
                hourly_chart=hourly_chart, volume_chart=volume_chart, channel_chart=channel_chart)
