"""Credit-bureau connectors: the interface (``base``), the providers by name, and the sandbox.

``connector(name)`` answers the provider registered under ``name`` (made once per process);
``register(name, factory)`` adds a provider; ``use(connector)`` replaces the provider of its name for the
whole process until ``use(None)`` (tests and the demo: a sandbox without simulated sleep).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from finloop.core.errors import InvalidRequest
from finloop.credit.bureau.base import BureauConnector
from finloop.credit.bureau.sandbox import SandboxBureau

DEFAULT_PROVIDER = "sandbox"

_lock = threading.Lock()
_factories: dict[str, Callable[[], BureauConnector]] = {"sandbox": SandboxBureau}
_instances: dict[str, BureauConnector] = {}
_overrides: dict[str, BureauConnector] = {}


def register(name: str, factory: Callable[[], BureauConnector]) -> None:
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


def providers() -> list[str]:
    with _lock:
        return sorted(set(_factories) | set(_overrides))


def connector(name: str = DEFAULT_PROVIDER) -> BureauConnector:
    with _lock:
        found = _overrides.get(name) or _instances.get(name)
        if found is not None:
            return found
        factory = _factories.get(name)
        if factory is None:
            raise InvalidRequest(f"No bureau provider {name[:40]!r}; known: {', '.join(sorted(_factories))}.",
                                 code="unknown_bureau_provider", param="provider")
        made = _instances[name] = factory()
        return made


def use(replacement: BureauConnector | None, *, name: str = DEFAULT_PROVIDER) -> None:
    """Answer ``replacement`` for ``name`` from now on (None: back to the registered provider)."""
    with _lock:
        if replacement is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = replacement
