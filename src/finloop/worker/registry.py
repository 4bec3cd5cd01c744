"""The job registry: what runs, and when.

A job is a function of a ``JobContext`` registered under a ``domain.verb`` name with a schedule:
- ``Every(seconds)``: an interval job, run for the whole installation at most once per interval;
- a business-day schedule such as ``AfterClose()``: run once per tenant and business date, in date order,
  once the schedule says that date is due by the tenant's calendar. Any object with a
  ``due_at(calendar, business_day)`` method is such a schedule, so later domains can add their own.

Domains register jobs from modules under ``finloop.worker.jobs``; the worker imports them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from finloop.core.calendar import BusinessCalendar

if TYPE_CHECKING:
    from finloop.worker.runner import JobContext

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True, slots=True)
class Every:
    """An interval job: due when ``seconds`` have passed since its last run finished."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("an interval is a positive number of seconds")


@runtime_checkable
class BusinessDaySchedule(Protocol):
    def due_at(self, calendar: BusinessCalendar, business_day: date) -> datetime:
        """The instant from which the job for ``business_day`` may run; later days are never due earlier."""
        ...


@dataclass(frozen=True, slots=True)
class AfterClose:
    """Due once the business day is over: at its cut-off (``day_closes_at``) plus ``delay``."""

    delay: timedelta = timedelta(0)

    def due_at(self, calendar: BusinessCalendar, business_day: date) -> datetime:
        return calendar.day_closes_at(business_day) + self.delay


Schedule = Every | BusinessDaySchedule
JobFunction = Callable[["JobContext"], None]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    function: JobFunction
    schedule: Schedule
    #: A run holds its lease this long; every committed step renews it. A run whose worker died is taken
    #: over once the lease has run out, so the lease must outlast the slowest step.
    lease_seconds: float = 300.0
    #: A business-date run that fails is retried up to this many attempts in all, then waits for an
    #: operator (``finloop jobs retry``); later dates of the same job and tenant wait behind it.
    max_attempts: int = 3
    #: The first retry waits this long, each further one twice as long.
    retry_seconds: float = 60.0

    @property
    def is_interval(self) -> bool:
        return isinstance(self.schedule, Every)

    def retry_delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=self.retry_seconds * 2 ** max(0, min(attempts - 1, 20)))


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobSpec] = {}

    def register(self, spec: JobSpec) -> JobSpec:
        if not _NAME.match(spec.name) or len(spec.name) > 100:
            raise ValueError(f"job names look like 'domain.verb', not {spec.name!r}")
        if not isinstance(spec.schedule, Every | BusinessDaySchedule):
            raise TypeError(f"job {spec.name}: unknown schedule {spec.schedule!r}")
        if spec.lease_seconds <= 0 or spec.max_attempts < 1 or spec.retry_seconds < 0:
            raise ValueError(f"job {spec.name}: lease_seconds > 0, max_attempts >= 1, retry_seconds >= 0")
        existing = self._jobs.get(spec.name)
        if existing is not None and existing.function is not spec.function:
            raise ValueError(f"job {spec.name} is already registered")
        self._jobs[spec.name] = spec
        return spec

    def job(self, name: str, *, schedule: Schedule, lease_seconds: float = 300.0, max_attempts: int = 3,
            retry_seconds: float = 60.0) -> Callable[[JobFunction], JobFunction]:
        """Register the decorated function as job ``name``."""
        def decorate(function: JobFunction) -> JobFunction:
            self.register(JobSpec(name, function, schedule, lease_seconds, max_attempts, retry_seconds))
            return function
        return decorate

    def get(self, name: str) -> JobSpec:
        try:
            return self._jobs[name]
        except KeyError:
            raise KeyError(f"no job named {name!r}; known: {', '.join(self._jobs)}") from None

    def specs(self) -> list[JobSpec]:
        """Jobs in registration order (a pass runs the interval jobs before the business-day ones)."""
        return list(self._jobs.values())

    def names(self) -> list[str]:
        return list(self._jobs)


#: The process-wide registry; ``load_jobs`` fills it with every built-in job.
registry = Registry()
job = registry.job


def load_jobs() -> Registry:
    """Import the job modules (registration happens at import) and return the registry."""
    import finloop.worker.jobs  # noqa: F401

    return registry
