"""A tenant's business calendar, read from its settings and holidays.

Calendars change rarely and are read on every posting, so each process keeps them for a few seconds;
``forget`` drops a tenant's entry after a change made in this process.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import time

from sqlalchemy import select

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import NotFound
from finloop.db.uow import UnitOfWork
from finloop.tenancy.models import Holiday, Tenant

_TTL_SECONDS = 10.0
_cache: dict[str, tuple[float, BusinessCalendar]] = {}
_lock = threading.Lock()


def parse_cutoff(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def load_calendar(uow: UnitOfWork, tenant_id: str) -> BusinessCalendar:
    tenant = uow.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    days = uow.session.scalars(select(Holiday.day).where(Holiday.tenant_id == tenant_id)).all()
    return BusinessCalendar.build(tenant.timezone, parse_cutoff(tenant.cutoff), days, tenant.weekend)


def get_calendar(uow: UnitOfWork, tenant_id: str) -> BusinessCalendar:
    now = _time.monotonic()
    with _lock:
        cached = _cache.get(tenant_id)
    if cached and now - cached[0] < _TTL_SECONDS:
        return cached[1]
    calendar = load_calendar(uow, tenant_id)
    with _lock:
        _cache[tenant_id] = (now, calendar)
    return calendar


def forget(tenant_id: str) -> None:
    with _lock:
        _cache.pop(tenant_id, None)
