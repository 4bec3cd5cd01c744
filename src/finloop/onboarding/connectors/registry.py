"""Verification providers by name. The sandbox is built in; another provider registers its factory on import.

``use_verifier`` puts one verifier in front of every tenant meanwhile (tests, the demo), like
``payouts.flows.use_bank``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from finloop.onboarding.connectors.base import Verifier

VerifierFactory = Callable[[], Verifier]

_lock = threading.Lock()
_factories: dict[str, VerifierFactory] = {}
_built: dict[str, Verifier] = {}
_override: Verifier | None = None


def register(provider: str, factory: VerifierFactory) -> None:
    with _lock:
        existing = _factories.get(provider)
        if existing is not None and existing is not factory:
            raise ValueError(f"verification provider {provider!r} is already registered")
        _factories[provider] = factory


def _load() -> None:
    from finloop.onboarding.connectors import sandbox  # noqa: F401  (registers itself)


def providers() -> list[str]:
    _load()
    with _lock:
        return sorted(_factories)


def verifier(provider: str) -> Verifier:
    """The verifier of ``provider`` (one instance per process), or the one given to ``use_verifier``."""
    _load()
    with _lock:
        if _override is not None:
            return _override
        found = _built.get(provider)
        if found is None:
            factory = _factories.get(provider)
            if factory is None:
                raise KeyError(f"no verification provider {provider!r}; known: {sorted(_factories)}")
            found = _built[provider] = factory()
        return found


@contextmanager
def use_verifier(replacement: Verifier) -> Iterator[Verifier]:
    """Send every check through ``replacement`` meanwhile."""
    global _override
    with _lock:
        previous, _override = _override, replacement
    try:
        yield replacement
    finally:
        with _lock:
            _override = previous
