"""The Stripe connector: form-encoded REST on ``/v1``, Bearer secret key, ``Stripe-Signature`` webhooks.

Invariants owned here:
- every create carries ``Idempotency-Key`` = our reference (the refund reference for refunds), so a
  retried create — the Stripe way to settle an ``UNKNOWN`` — replays the first answer and never charges twice;
- 5xx, 409 (same key in flight), timeouts and resets after sending are ``UNKNOWN``; 429 and a connection
  never made are retryable ``FAILED``; 402 card errors are ``DECLINED`` (not retryable) except the
  processing errors Stripe says to retry;
- card data goes only into the request body; it never reaches ``raw``, an exception or a log line,
  and ``client_secret`` never reaches ``raw`` either;
- webhooks are verified against the raw body and the injected clock before being decoded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from finloop.core.clock import Clock, SystemClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.base import (
    Acknowledgement,
    Action,
    BillFile,
    CaptureRequest,
    ChannelConfig,
    InvalidSignature,
    Notification,
    NotificationKind,
    OperationResult,
    Outcome,
    PaymentMethod,
    PayRequest,
    PayResult,
    QueryResult,
    RefundRequest,
    RefundResult,
)
from finloop.payments.connectors.stripe import wire
from finloop.payments.connectors.stripe.signing import DEFAULT_TOLERANCE_SECONDS, verify_header

#: Refund reasons Stripe accepts; anything else travels in metadata only.
_STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
#: The webhook event types ``parse_notification`` decodes; register the endpoint for these.
CONSUMED_EVENTS = (
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.amount_capturable_updated", "payment_intent.processing", "payment_intent.requires_action",
    "charge.refunded", "refund.created", "refund.updated", "refund.failed",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
)

_default_clock: Clock = SystemClock()


def set_default_clock(clock: Clock) -> Clock:
    """Use ``clock`` for connectors built without one (a simulation); returns the previous clock."""
    global _default_clock
    previous, _default_clock = _default_clock, clock
    return previous


@dataclass(frozen=True, slots=True)
class _Reply:
    status_code: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None      # None: a 2xx with a JSON object
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is None

    @property
    def error(self) -> dict[str, Any]:
        value = self.body.get("error")
        return value if isinstance(value, dict) else {}


class StripeConnector:
    """Pays by card (automatic or manual capture), queries, captures, cancels, refunds, parses webhooks,
    downloads the balance report."""

    provider = "stripe"

    def __init__(self, config: ChannelConfig, client: httpx.Client, *, clock: Clock | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._http = client
        self._clock = clock
        self._sleep = sleep
        self._secret_key = config.credentials["secret_key"]
        self._webhook_secret = config.credentials.get("webhook_secret", "")
        tolerance = config.settings.get("webhook_tolerance_seconds", DEFAULT_TOLERANCE_SECONDS)
        # None / "none" / 0: signatures are still verified, freshness is not (a sandbox in simulated time).
        self._tolerance = 0 if tolerance in (None, "none", "None", "") else int(tolerance)
        self._api_version = config.settings.get("api_version")
        self._base = config.base_url.rstrip("/")

    # ------------------------------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, *, data: Mapping[str, Any] | None = None,
                 params: Mapping[str, Any] | None = None, idempotency_key: str | None = None,
                 url: str | None = None) -> _Reply:
        headers = {"Authorization": f"Bearer {self._secret_key}"}
        if self._api_version:
            headers["Stripe-Version"] = str(self._api_version)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        content: bytes | None = None
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(wire.encode_form(data)).encode("ascii")
        query: list[tuple[str, str | int | float | bool | None]] | None = (
            list(wire.encode_form(params)) if params else None)
        try:
            # The body may hold card data: it is built here and handed to httpx, never logged or raised.
            built = self._http.build_request(method, url or f"{self._base}{path}", headers=headers, content=content,
                                             params=query, timeout=self.config.timeout_seconds)
            response = self._http.send(built)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            return _Reply(outcome=Outcome.FAILED, error_code="connect_error", error_message=type(error).__name__,
                          retryable=True)
        except httpx.TimeoutException as error:
            return _Reply(outcome=Outcome.UNKNOWN, error_code="timeout", error_message=type(error).__name__,
                          retryable=True)
        except httpx.TransportError as error:
            return _Reply(outcome=Outcome.UNKNOWN, error_code="network_error", error_message=type(error).__name__,
                          retryable=True)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code < 500 and response.status_code not in (408, 409, 429) \
                    and not 200 <= response.status_code < 300:
                return _Reply(status_code=response.status_code, outcome=Outcome.FAILED,
                              error_code=f"http_{response.status_code}", error_message="stripe answered without JSON")
            return _Reply(status_code=response.status_code, outcome=Outcome.UNKNOWN,
                          error_code=f"http_{response.status_code}", error_message="stripe reply is not JSON",
                          retryable=True)
        if 200 <= response.status_code < 300:
            return _Reply(status_code=response.status_code, body=body)
        found = body.get("error")
        detail: dict[str, Any] = found if isinstance(found, dict) else {}
        outcome, retryable = wire.error_outcome(response.status_code, detail)
        code = detail.get("decline_code") or detail.get("code") or detail.get("type") or f"http_{response.status_code}"
        return _Reply(status_code=response.status_code, body=body, outcome=outcome, error_code=str(code),
                      error_message=_str(detail.get("message")), retryable=retryable)

    def _find_intent(self, reference: str) -> _Reply:
        """Search PaymentIntents by ``metadata['reference']``; ``body`` is the newest match ({} for none)."""
        query = f"metadata['reference']:'{_quote(reference)}'"
        reply = self._request("GET", "/v1/payment_intents/search",
                              params={"query": query, "expand": ["data.latest_charge.balance_transaction"]})
        if not reply.ok:
            return reply
        data = reply.body.get("data")
        found = wire.newest([item for item in data if isinstance(item, dict)]) if isinstance(data, list) else None
        return _Reply(status_code=reply.status_code, body=dict(found) if found else {})

    # ------------------------------------------------------------------------------------------ pay

    def pay(self, request: PayRequest) -> PayResult:
        if request.method is not PaymentMethod.CARD:
            return PayResult(outcome=Outcome.FAILED, error_code="method_not_supported",
                             error_message=f"stripe takes card payments only, not {request.method.value}")
        if request.card is None:
            return PayResult(outcome=Outcome.FAILED, error_code="card_required",
                             error_message="a card payment needs card data")
        try:
            amount = wire.to_stripe_amount(request.amount, request.currency)
        except ValueError as error:
            return PayResult(outcome=Outcome.FAILED, error_code="invalid_amount", error_message=str(error))
        card: dict[str, Any] = {"number": request.card.number, "exp_month": request.card.exp_month,
                                "exp_year": request.card.exp_year}
        if request.card.cvc:
            card["cvc"] = request.card.cvc
        data: dict[str, Any] = {
            "amount": amount,
            "currency": request.currency.lower(),
            "confirm": True,
            "capture_method": "automatic" if request.capture else "manual",
            "payment_method_types": ["card"],
            "payment_method_data": {"type": "card", "card": card},
            "metadata": {**dict(request.metadata), "reference": request.reference},
            "description": request.description[:1000] or None,
            "return_url": request.return_url,
        }
        reply = self._request("POST", "/v1/payment_intents", data=data, idempotency_key=request.reference)
        if reply.ok:
            return self._pay_result(reply.body)
        intent = reply.error.get("payment_intent")
        channel_ref = _str(intent.get("id")) if isinstance(intent, dict) else None
        return PayResult(outcome=reply.outcome or Outcome.UNKNOWN, channel_ref=channel_ref,
                         error_code=reply.error_code, error_message=reply.error_message, retryable=reply.retryable,
                         raw=wire.redact(reply.body))

    def _pay_result(self, intent: Mapping[str, Any]) -> PayResult:
        outcome, retryable = wire.intent_outcome(intent)
        action = None
        if outcome is Outcome.REQUIRES_ACTION:
            next_action = intent.get("next_action")
            url = None
            if isinstance(next_action, dict) and isinstance(next_action.get("redirect_to_url"), dict):
                url = _str(next_action["redirect_to_url"].get("url"))
            action = Action(type="redirect", redirect_url=url)
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        return PayResult(outcome=outcome, channel_ref=_str(intent.get("id")), action=action,
                         fee=self._fee(intent),
                         error_code=_str(error.get("decline_code")) or _str(error.get("code")),
                         error_message=_str(error.get("message")), retryable=retryable, raw=wire.redact(intent))

    def query(self, reference: str) -> QueryResult:
        reply = self._find_intent(reference)
        if not reply.ok:
            return QueryResult(outcome=Outcome.UNKNOWN, reference=reference, error_code=reply.error_code,
                               error_message=reply.error_message, raw=wire.redact(reply.body))
        if not reply.body:
            # Search is eventually consistent (about a minute behind a create): see docs/connectors/stripe.md.
            return QueryResult(outcome=Outcome.NOT_FOUND, reference=reference)
        return self._query_result(reply.body, reference)

    def _query_result(self, intent: Mapping[str, Any], reference: str) -> QueryResult:
        outcome, _ = wire.intent_outcome(intent)
        currency = str(intent.get("currency", "")).upper() or None
        amount = _amount(intent.get("amount"), currency)
        received = _amount(intent.get("amount_received"), currency)
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        charge = intent.get("latest_charge")
        paid_at = None
        if isinstance(charge, dict) and charge.get("captured") and isinstance(charge.get("created"), int):
            paid_at = datetime.fromtimestamp(charge["created"], UTC)
        return QueryResult(outcome=outcome, reference=wire.metadata_reference(intent) or reference,
                           channel_ref=_str(intent.get("id")), amount=amount,
                           captured_amount=received if received else None, currency=currency,
                           fee=self._fee(intent), paid_at=paid_at,
                           error_code=_str(error.get("decline_code")) or _str(error.get("code")),
                           error_message=_str(error.get("message")), raw=wire.redact(intent))

    @staticmethod
    def _fee(intent: Mapping[str, Any]) -> int | None:
        charge = intent.get("latest_charge")
        if not isinstance(charge, dict):
            return None
        transaction = charge.get("balance_transaction")
        if not isinstance(transaction, dict) or not isinstance(transaction.get("fee"), int):
            return None
        return wire.from_stripe_amount(transaction["fee"], str(transaction.get("currency", "")).upper())

    # ------------------------------------------------------------------------------------------ capture, cancel

    def capture(self, request: CaptureRequest) -> OperationResult:
        try:
            amount = wire.to_stripe_amount(request.amount, request.currency)
        except ValueError as error:
            return OperationResult(outcome=Outcome.FAILED, error_code="invalid_amount", error_message=str(error))
        reply = self._request("POST", f"/v1/payment_intents/{request.channel_ref}/capture",
                              data={"amount_to_capture": amount},
                              idempotency_key=f"{request.reference}:capture:{request.amount}")
        return self._operation(reply)

    def cancel(self, reference: str, channel_ref: str | None) -> OperationResult:
        if not channel_ref:
            found = self._find_intent(reference)
            if not found.ok:
                return self._operation(found)
            channel_ref = _str(found.body.get("id"))
            if channel_ref is None:
                return OperationResult(outcome=Outcome.NOT_FOUND, error_code="resource_missing")
        reply = self._request("POST", f"/v1/payment_intents/{channel_ref}/cancel", data={},
                              idempotency_key=f"{reference}:cancel")
        return self._operation(reply)

    def _operation(self, reply: _Reply) -> OperationResult:
        if reply.ok:
            outcome, retryable = wire.intent_outcome(reply.body)
            currency = str(reply.body.get("currency", "")).upper() or None
            amount = reply.body.get("amount_received") if outcome is Outcome.SUCCEEDED else reply.body.get("amount")
            return OperationResult(outcome=outcome, channel_ref=_str(reply.body.get("id")),
                                   amount=_amount(amount, currency), retryable=retryable,
                                   raw=wire.redact(reply.body))
        outcome = reply.outcome or Outcome.UNKNOWN
        if outcome is Outcome.DECLINED:
            outcome = Outcome.FAILED
        return OperationResult(outcome=outcome, error_code=reply.error_code, error_message=reply.error_message,
                               retryable=reply.retryable, raw=wire.redact(reply.body))

    # ------------------------------------------------------------------------------------------ refunds

    def refund(self, request: RefundRequest) -> RefundResult:
        channel_ref = request.channel_ref
        if not channel_ref:
            found = self._find_intent(request.reference)
            if not found.ok or not found.body:
                return RefundResult(outcome=found.outcome or Outcome.NOT_FOUND,
                                    refund_reference=request.refund_reference, error_code=found.error_code,
                                    retryable=found.retryable)
            channel_ref = _str(found.body.get("id"))
        try:
            amount = wire.to_stripe_amount(request.amount, request.currency)
        except ValueError as error:
            return RefundResult(outcome=Outcome.FAILED, refund_reference=request.refund_reference,
                                error_code="invalid_amount", error_message=str(error))
        metadata = {"reference": request.refund_reference, "payment_reference": request.reference}
        data: dict[str, Any] = {"payment_intent": channel_ref, "amount": amount, "metadata": metadata}
        if request.reason in _STRIPE_REFUND_REASONS:
            data["reason"] = request.reason
        elif request.reason:
            metadata["reason"] = request.reason[:500]
        reply = self._request("POST", "/v1/refunds", data=data, idempotency_key=request.refund_reference)
        if reply.ok:
            return self._refund_result(reply.body, request.refund_reference)
        outcome = reply.outcome or Outcome.UNKNOWN
        if outcome is Outcome.DECLINED:
            outcome = Outcome.FAILED
        return RefundResult(outcome=outcome, refund_reference=request.refund_reference,
                            error_code=reply.error_code, error_message=reply.error_message,
                            retryable=reply.retryable, raw=wire.redact(reply.body))

    def query_refund(self, refund_reference: str, reference: str) -> RefundResult:
        found = self._find_intent(reference)
        if not found.ok:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=refund_reference,
                                error_code=found.error_code, error_message=found.error_message, retryable=True)
        if not found.body:
            return RefundResult(outcome=Outcome.NOT_FOUND, refund_reference=refund_reference)
        reply = self._request("GET", "/v1/refunds", params={"payment_intent": found.body.get("id"), "limit": 100})
        if not reply.ok:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=refund_reference,
                                error_code=reply.error_code, error_message=reply.error_message, retryable=True)
        data = reply.body.get("data")
        refunds = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
        matching = [item for item in refunds if wire.metadata_reference(item) == refund_reference]
        refund = wire.newest(matching)
        if refund is None:
            return RefundResult(outcome=Outcome.NOT_FOUND, refund_reference=refund_reference)
        return self._refund_result(refund, refund_reference)

    @staticmethod
    def _refund_result(refund: Mapping[str, Any], refund_reference: str) -> RefundResult:
        currency = str(refund.get("currency", "")).upper() or None
        status = str(refund.get("status", ""))
        return RefundResult(outcome=wire.REFUND_STATUS.get(status, Outcome.UNKNOWN),
                            refund_reference=wire.metadata_reference(refund) or refund_reference,
                            channel_refund_ref=_str(refund.get("id")), amount=_amount(refund.get("amount"), currency),
                            error_code=_str(refund.get("failure_reason")), raw=wire.redact(refund))

    # ------------------------------------------------------------------------------------------ webhooks

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        signature = next((value for key, value in headers.items() if key.lower() == "stripe-signature"), None)
        verify_header(body, signature, self._webhook_secret, now=int((self._clock or _default_clock).now().timestamp()),
                      tolerance=self._tolerance)
        try:
            event = json.loads(body)
        except ValueError as error:
            raise InvalidSignature("signed webhook body is not JSON") from error
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise InvalidSignature("signed webhook body is not a Stripe event")
        obj = event["data"].get("object")
        obj = obj if isinstance(obj, dict) else {}
        kind = str(event.get("type", ""))
        event_id = str(event.get("id", ""))
        raw = wire.redact(event)
        if kind.startswith("payment_intent."):
            payment = self._query_result(obj, wire.metadata_reference(obj) or "")
            return Notification(kind=NotificationKind.PAYMENT, notification_id=event_id, payment=payment, raw=raw)
        if kind.startswith("refund."):
            refund = self._refund_result(obj, wire.metadata_reference(obj) or "")
            return Notification(kind=NotificationKind.REFUND, notification_id=event_id, refund=refund, raw=raw)
        if kind == "charge.refunded":
            refunds = obj.get("refunds")
            listed = refunds.get("data") if isinstance(refunds, dict) else None
            latest = wire.newest([item for item in listed if isinstance(item, dict)]) if isinstance(listed, list) \
                else None
            if latest is not None:
                refund = self._refund_result(latest, wire.metadata_reference(latest) or "")
                return Notification(kind=NotificationKind.REFUND, notification_id=event_id, refund=refund, raw=raw)
            raise ValueError("charge.refunded event lists no refund (subscribe to refund.updated instead)")
        if kind.startswith("charge.dispute."):
            return Notification(kind=NotificationKind.DISPUTE, notification_id=event_id,
                                dispute=self._dispute(obj), raw=raw)
        # Verified but not for us (the endpoint should subscribe only to CONSUMED_EVENTS).
        raise ValueError(f"stripe event type {kind!r} is not consumed")

    def _dispute(self, dispute: Mapping[str, Any]) -> dict[str, Any]:
        currency = str(dispute.get("currency", "")).upper() or None
        intent_id = _str(dispute.get("payment_intent"))
        reference = wire.metadata_reference(dispute)
        if reference is None and intent_id:
            # A Dispute does not carry the PaymentIntent's metadata; one read fetches our reference.
            reply = self._request("GET", f"/v1/payment_intents/{intent_id}")
            reference = wire.metadata_reference(reply.body) if reply.ok else None
        details = dispute.get("evidence_details")
        due = details.get("due_by") if isinstance(details, dict) else None
        return {
            "id": _str(dispute.get("id")),
            "reference": reference,
            "channel_ref": intent_id,
            "charge": _str(dispute.get("charge")),
            "amount": _amount(dispute.get("amount"), currency),
            "currency": currency,
            "reason": _str(dispute.get("reason")),
            "status": _str(dispute.get("status")),
            "evidence_due_by": datetime.fromtimestamp(due, UTC) if isinstance(due, int) else None,
        }

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        # Stripe retries any non-2xx answer.
        if accepted:
            return Acknowledgement(status_code=200, body=b'{"received":true}', media_type="application/json")
        return Acknowledgement(status_code=400, body=b'{"received":false}', media_type="application/json")

    # ------------------------------------------------------------------------------------------ bill

    def download_bill(self, business_date: date, *, max_polls: int = 30, poll_seconds: float = 2.0) -> BillFile:
        """The itemized balance-change report for one UTC day: create a report run, wait for it, fetch its file."""
        start = datetime(business_date.year, business_date.month, business_date.day, tzinfo=UTC)
        data = {
            "report_type": wire.REPORT_TYPE,
            "parameters": {"interval_start": int(start.timestamp()),
                           "interval_end": int((start + timedelta(days=1)).timestamp()),
                           "columns": list(wire.REPORT_COLUMNS)},
        }
        reply = self._request("POST", "/v1/reporting/report_runs", data=data,
                              idempotency_key=f"report:{self.config.code}:{business_date.isoformat()}")
        polls = 0
        while reply.ok and reply.body.get("status") == "pending" and polls < max_polls:
            polls += 1
            self._sleep(poll_seconds)
            reply = self._request("GET", f"/v1/reporting/report_runs/{reply.body.get('id')}")
        if not reply.ok or reply.body.get("status") != "succeeded":
            raise ExternalServiceError(
                f"stripe report for {business_date} unavailable: {reply.error_message or reply.body.get('status')}",
                code=reply.error_code or "report_unavailable",
                retryable=reply.retryable or reply.body.get("status") == "pending")
        result = reply.body.get("result")
        url = _str(result.get("url")) if isinstance(result, dict) else None
        if url is None:
            raise ExternalServiceError("stripe report run has no file", code="report_unavailable", retryable=True)
        try:
            response = self._http.send(self._http.build_request(
                "GET", url, headers={"Authorization": f"Bearer {self._secret_key}"},
                timeout=self.config.timeout_seconds))
        except httpx.TransportError as error:
            raise ExternalServiceError("stripe report download failed", code="report_download_failed",
                                       retryable=True) from error
        if response.status_code != 200:
            raise ExternalServiceError(f"stripe report download answered {response.status_code}",
                                       code="report_download_failed", retryable=response.status_code >= 500)
        filename = _str(result.get("filename")) if isinstance(result, dict) else None
        return BillFile(channel=self.config.code, business_date=business_date,
                        filename=filename or f"balance_change_from_activity_{business_date:%Y%m%d}.csv",
                        media_type=wire.REPORT_MEDIA_TYPE, content=response.content)


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _amount(value: object, currency: str | None) -> int | None:
    if value is None or currency is None:
        return None
    return wire.from_stripe_amount(value, currency)


def _quote(value: str) -> str:
    """Escape a value inside a single-quoted Stripe search string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
