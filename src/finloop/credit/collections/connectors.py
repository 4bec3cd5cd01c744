"""Messaging connectors of collections: SMS and calls (an IVR or a dialer), each a one-method protocol so a real
provider can be plugged in with ``use_sms`` / ``use_calls``, and the sandboxes used by default.

Invariants owned here:
- a connector is called outside any transaction, after the attempt was recorded (an action or reminder row in
  ``pending``), and its answer is applied in a transaction of its own; a send that raised is recorded as failed
  with the error's class name, never as sent;
- the request's ``reference`` (the action or reminder id) is the provider's idempotency key: a pending attempt
  sent again after a crash must not reach the borrower twice (the sandbox answers the first result again);
- the phone number lives only in the request object: it is never logged, stored or returned; results carry no
  part of it;
- the sandboxes decide from the input alone (the number's last digit, the reference), so tests and the demo see
  the same outcomes every time.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class SmsOutcome(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SmsRequest:
    reference: str
    tenant_id: str
    to: str = field(repr=False)
    #: A template name ("reminder_upcoming", "reminder_due", "collection_m1"...) and its parameters.
    template: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class SmsResult:
    outcome: SmsOutcome
    provider_reference: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class CallRequest:
    reference: str
    tenant_id: str
    to: str = field(repr=False)
    script: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: CallOutcome
    provider_reference: str | None = None
    error_code: str | None = None


class SmsConnector(Protocol):
    def send_sms(self, request: SmsRequest) -> SmsResult: ...


class CallConnector(Protocol):
    def place_call(self, request: CallRequest) -> CallResult: ...


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _provider_reference(prefix: str, reference: str) -> str:
    return f"{prefix}_{hashlib.sha256(reference.encode()).hexdigest()[:20]}"


class SandboxSms:
    """Delivers every message except to a number ending in 0 (``invalid_number``); remembers each reference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, SmsResult] = {}
        self.messages: list[tuple[str, str, dict[str, str]]] = []  # (reference, template, params): no number

    def send_sms(self, request: SmsRequest) -> SmsResult:
        with self._lock:
            known = self._sent.get(request.reference)
            if known is not None:
                return known
            if _digits(request.to).endswith("0"):
                result = SmsResult(SmsOutcome.FAILED, None, "invalid_number")
            else:
                result = SmsResult(SmsOutcome.DELIVERED, _provider_reference("sms", request.reference))
            self._sent[request.reference] = result
            self.messages.append((request.reference, request.template, dict(request.params)))
            return result


#: The sandbox dialer's answer by the number's last digit; any other digit answers.
CALL_OUTCOMES = {"1": CallOutcome.NO_ANSWER, "2": CallOutcome.BUSY, "3": CallOutcome.FAILED}


class SandboxCalls:
    """Answers by the number's last digit (``CALL_OUTCOMES``); remembers each reference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placed: dict[str, CallResult] = {}
        self.calls: list[tuple[str, str]] = []  # (reference, script)

    def place_call(self, request: CallRequest) -> CallResult:
        with self._lock:
            known = self._placed.get(request.reference)
            if known is not None:
                return known
            digits = _digits(request.to)
            outcome = CALL_OUTCOMES.get(digits[-1:], CallOutcome.ANSWERED)
            result = CallResult(outcome, _provider_reference("call", request.reference),
                                "call_failed" if outcome is CallOutcome.FAILED else None)
            self._placed[request.reference] = result
            self.calls.append((request.reference, request.script))
            return result


_lock = threading.Lock()
_sms: SmsConnector | None = None
_calls: CallConnector | None = None


def sms() -> SmsConnector:
    global _sms
    with _lock:
        if _sms is None:
            _sms = SandboxSms()
        return _sms


def calls() -> CallConnector:
    global _calls
    with _lock:
        if _calls is None:
            _calls = SandboxCalls()
        return _calls


def use_sms(connector: SmsConnector | None) -> None:
    """Send SMS through ``connector`` from now on (None: a fresh sandbox on next use)."""
    global _sms
    with _lock:
        _sms = connector


def use_calls(connector: CallConnector | None) -> None:
    global _calls
    with _lock:
        _calls = connector
