"""What a simulated provider supplies to the sandbox: its wire, its notifications, its bill, its config.

Each provider package ``finloop.payments.connectors.<name>`` may hold a ``sandbox`` module whose
``make_sandbox()`` returns a ``SandboxProvider``. The provider only translates; all state and every
decision live in the shared ``SandboxEngine``.

Invariants owned here: a provider name maps to exactly one sandbox module path; a provider that has
no sandbox module is reported as ``LookupError`` (never a half-built object).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from finloop.payments.connectors.base import BillFile, ChannelConfig
from finloop.payments.connectors.registry import PROVIDER_PACKAGES
from finloop.payments.connectors.sandbox.engine import BillLine, PendingNotification, SandboxEngine


@runtime_checkable
class SandboxProvider(Protocol):
    name: str  # the registry provider name, e.g. "wechat"

    # provider API, mounted at /{channel}
    def router(self, engine: SandboxEngine, channel: str) -> APIRouter: ...

    # the signed HTTP POST (headers, body) the provider sends to item.url
    def notification(self, item: PendingNotification) -> tuple[dict[str, str], bytes]: ...

    # its daily bill in its own layout
    def bill(self, lines: Sequence[BillLine], business_date: date, channel: str) -> BillFile: ...

    # credentials matching this sandbox's keys; base_url is the sandbox base + "/" + channel
    def channel_config(self, channel: str, base_url: str) -> ChannelConfig: ...


def sandbox_provider(name: str) -> SandboxProvider:
    """The sandbox of provider ``name`` (imports ``finloop.payments.connectors.{name}.sandbox``).

    Raises ``LookupError`` when the provider has no sandbox module."""
    if not name.isidentifier():
        raise LookupError(f"no sandbox provider {name!r}")
    module_name = f"finloop.payments.connectors.{name}.sandbox"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only a missing sandbox module means "no such provider"; a broken import inside it propagates.
        if error.name is not None and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise LookupError(f"no sandbox provider {name!r}") from error
        raise
    make = getattr(module, "make_sandbox", None)
    if make is None:
        raise LookupError(f"{module_name} has no make_sandbox()")
    provider: SandboxProvider = make()
    return provider


def available_providers() -> list[str]:
    """The known provider packages whose sandbox imports cleanly, in registry order."""
    names: list[str] = []
    for name in PROVIDER_PACKAGES:
        try:
            sandbox_provider(name)
        except LookupError:
            continue
        names.append(name)
    return names
