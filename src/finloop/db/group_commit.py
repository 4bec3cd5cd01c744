"""Group commit: the concurrent single writes of one process, gathered into one transaction.

A request hands its item to ``GroupCommit.submit`` and awaits the outcome on its event loop. One
thread per committer takes every item waiting (at most ``max_group``), runs them in one unit of work
and commits once, while the next requests gather behind it. So concurrent requests share the round
trips, the locks and the commit's fsync, where each used to pay for its own; a lone request waits for
nobody and commits as before.

Every item keeps its own outcome. ``commit_group`` may refuse an item without writing anything for it
(the ledger refuses a transfer that would overdraw, and posts the others): that item gets its error and
the group commits the rest. When the group's transaction fails as a whole (an error ``commit_group``
raises, the database refusing the commit), nothing of it was committed: the group is split in halves
and each half runs again, down to single items, so each gets the answer it would have had without
company, at the price of about two transactions per level of splitting.

The thread exits after ``idle_seconds`` without work and the next submission starts another, so an
application that stops taking requests (or a test's app) leaves no thread behind.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

from finloop.db.uow import Database, UnitOfWork

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(slots=True)
class _Waiting(Generic[Item, Outcome]):
    item: Item
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]


def _settle(future: asyncio.Future[Outcome], result: Outcome | None, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (its client went away): the write stands, the answer is lost
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class GroupCommit(Generic[Item, Outcome]):
    """Commits the items of concurrent submissions together. ``commit_group`` writes a group in the unit
    of work it is given and answers one outcome per item, in order: a result, or the error of an item it
    refused without writing anything for it (the committer commits the rest)."""

    def __init__(self, db: Database,
                 commit_group: Callable[[UnitOfWork, Sequence[Item]], Sequence[Outcome | BaseException]], *,
                 max_group: int = 256, idle_seconds: float = 5.0, name: str = "group-commit") -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._db = db
        self._commit_group = commit_group
        self._max_group = max_group
        self._idle_seconds = idle_seconds
        self._name = name
        self._waiting: deque[_Waiting[Item, Outcome]] = deque()
        self._wake = threading.Condition()
        self._running = False
        #: Groups committed and the items they committed, since the start (for the benchmark and the tests).
        self.groups = 0
        self.items = 0

    @property
    def waiting(self) -> int:
        """Items submitted and not yet taken into a group."""
        with self._wake:
            return len(self._waiting)

    @property
    def running(self) -> bool:
        with self._wake:
            return self._running

    async def submit(self, item: Item) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        with self._wake:
            self._waiting.append(_Waiting(item, loop, future))
            if self._running:
                self._wake.notify()
            else:
                self._running = True
                threading.Thread(target=self._drain, name=self._name, daemon=True).start()
        return await future

    def _drain(self) -> None:
        while True:
            with self._wake:
                if not self._waiting:
                    self._wake.wait(self._idle_seconds)
                    if not self._waiting:
                        self._running = False
                        return
                group = [self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_group))]
            outcomes = self._commit([waiting.item for waiting in group])
            for waiting, (result, error) in zip(group, outcomes, strict=True):
                # A closed event loop refuses the call: nobody is waiting for this answer any more.
                with suppress(RuntimeError):
                    waiting.loop.call_soon_threadsafe(_settle, waiting.future, result, error)

    def _commit(self, items: list[Item]) -> list[tuple[Outcome | None, BaseException | None]]:
        try:
            outcomes = self._run(items)
        except Exception as error:  # noqa: BLE001 - every error is some item's answer, found by splitting
            if len(items) == 1:
                return [(None, error)]
            middle = len(items) // 2
            return self._commit(items[:middle]) + self._commit(items[middle:])
        return [(None, outcome) if isinstance(outcome, BaseException) else (outcome, None) for outcome in outcomes]

    def _run(self, items: list[Item]) -> list[Outcome | BaseException]:
        with self._db.uow() as uow:
            outcomes = list(self._commit_group(uow, items))
            if len(outcomes) != len(items):
                raise RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(items)} items")
            uow.commit()
        self.groups += 1
        self.items += sum(1 for outcome in outcomes if not isinstance(outcome, BaseException))
        return outcomes
