"""The generic connector: finloop's capability interfaces over the generic JSON + HMAC wire.

Invariants owned here:
- a call whose outcome cannot be known (transport error, timeout, any 5xx but 503, a reply that does
  not parse or whose signature does not verify) returns ``Outcome.UNKNOWN``; a 503 (outage, nothing
  processed) returns FAILED with ``retryable``;
- card numbers, CVCs, account numbers and secrets go only into the signed request body: never into
  ``raw``, exceptions or logs (``raw`` is the redacted, verified reply);
- a notification is processed only when its signature verifies (``InvalidSignature`` otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.base import (
    Acknowledgement,
    Action,
    BillFile,
    CaptureRequest,
    ChannelConfig,
    Notification,
    NotificationKind,
    OperationResult,
    Outcome,
    PaymentMethod,
    PayoutRequest,
    PayoutResult,
    PayRequest,
    PayResult,
    QueryResult,
    RefundRequest,
    RefundResult,
)
from finloop.payments.connectors.generic import wire


@dataclass(frozen=True, slots=True)
class _Reply:
    status_code: int
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def error(self) -> Mapping[str, Any]:
        error = self.data.get("error")
        return error if isinstance(error, Mapping) else {}

    @property
    def raw(self) -> dict[str, Any]:
        redacted: dict[str, Any] = wire.redact(self.data)
        return redacted


class _Unknown(Exception):
    """The outcome cannot be known: the reason is safe to record (no secrets, no card data)."""


class GenericConnector:
    """Pays, queries, captures, cancels, refunds, parses notifications, downloads bills and pays out."""

    def __init__(self, config: ChannelConfig, client: httpx.Client) -> None:
        self.config = config
        self._client = client
        self._base = config.base_url.rstrip("/")
        self._api_key = config.credentials.get("api_key", "")
        self._secret = config.credentials.get("api_secret", "")
        tolerance = config.settings.get("signature_tolerance_seconds")
        self._tolerance = int(tolerance) if tolerance is not None else None

    # ---------------------------------------------------------------------------------- transport

    def _send(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> httpx.Response:
        body = wire.encode(payload) if payload is not None else b""
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            wire.SIGNATURE_HEADER: wire.signature(self._secret, body, int(time.time())),
            "Accept": "application/json",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            return self._client.request(method, f"{self._base}{wire.API_PREFIX}{path}", content=body or None,
                                        headers=headers, timeout=self.config.timeout_seconds)
        except httpx.TimeoutException as error:
            raise _Unknown("timeout") from error
        except httpx.HTTPError as error:
            raise _Unknown(f"transport error: {type(error).__name__}") from error

    def _verified(self, response: httpx.Response) -> bytes:
        try:
            wire.verify(self._secret, response.headers.get(wire.SIGNATURE_HEADER), response.content)
        except Exception as error:
            raise _Unknown(f"unverifiable reply (HTTP {response.status_code})") from error
        return response.content

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> _Reply:
        response = self._send(method, path, payload)
        if response.status_code >= 500 and response.status_code != 503:
            raise _Unknown(f"HTTP {response.status_code}")
        if response.status_code == 503:
            # An outage reply need not be signed: it changes nothing and we only fail over on it.
            return _Reply(503, {"error": {"type": wire.UNAVAILABLE, "code": "service_unavailable"}})
        content = self._verified(response)
        try:
            return _Reply(response.status_code, wire.decode(content))
        except ValueError as error:
            raise _Unknown(f"unparseable reply (HTTP {response.status_code})") from error

    # ---------------------------------------------------------------------------------- payments

    def pay(self, request: PayRequest) -> PayResult:
        payload: dict[str, Any] = {
            "reference": request.reference, "amount": request.amount, "currency": request.currency,
            "method": request.method.value, "capture": request.capture, "description": request.description,
            "notify_url": request.notify_url, "return_url": request.return_url,
            "customer_ref": request.customer_ref, "metadata": dict(request.metadata),
            "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        }
        if request.card is not None:
            payload["card"] = {"number": request.card.number, "exp_month": request.card.exp_month,
                               "exp_year": request.card.exp_year, "cvc": request.card.cvc,
                               "holder": request.card.holder}
        try:
            reply = self._call("POST", "/payments", payload)
        except _Unknown as unknown:
            return PayResult(outcome=Outcome.UNKNOWN, error_message=str(unknown))
        if not reply.ok:
            outcome, retryable = wire.error_outcome(reply.status_code, reply.error.get("type"))
            return PayResult(outcome=outcome, error_code=reply.error.get("code"),
                             error_message=reply.error.get("message"), retryable=retryable, raw=reply.raw)
        data = reply.data
        error = _error_of(data)
        outcome = wire.payment_outcome(str(data.get("status")), error.get("type"))
        return PayResult(outcome=outcome, channel_ref=data.get("id"), action=self._action(data),
                         fee=wire.optional_int(data.get("fee")) if outcome is Outcome.SUCCEEDED else None,
                         error_code=error.get("code"), error_message=error.get("message"),
                         retryable=outcome is Outcome.FAILED and error.get("type") == wire.CHANNEL_ERROR,
                         raw=reply.raw)

    @staticmethod
    def _action(data: Mapping[str, Any]) -> Action | None:
        action = data.get("action")
        if not isinstance(action, Mapping):
            return None
        return Action(type=str(action.get("type")), qr_code=action.get("qr_code"),
                      redirect_url=action.get("redirect_url"), app_payload=action.get("app_payload"),
                      expires_at=wire.parse_time(action.get("expires_at")))

    def query(self, reference: str) -> QueryResult:
        try:
            reply = self._call("GET", f"/payments/{reference}")
        except _Unknown as unknown:
            return QueryResult(outcome=Outcome.UNKNOWN, reference=reference, error_message=str(unknown))
        if reply.status_code == 404:
            return QueryResult(outcome=Outcome.NOT_FOUND, reference=reference, raw=reply.raw)
        if not reply.ok:
            return QueryResult(outcome=Outcome.UNKNOWN, reference=reference, error_code=reply.error.get("code"),
                               error_message=reply.error.get("message"), raw=reply.raw)
        return self._query_result(reply.data, reply.raw)

    @staticmethod
    def _query_result(data: Mapping[str, Any], raw: Mapping[str, Any]) -> QueryResult:
        error = _error_of(data)
        return QueryResult(
            outcome=wire.payment_outcome(str(data.get("status")), error.get("type")),
            reference=str(data.get("reference")), channel_ref=data.get("id"),
            amount=wire.optional_int(data.get("amount")),
            captured_amount=wire.optional_int(data.get("captured_amount")),
            currency=data.get("currency"), fee=wire.optional_int(data.get("fee")),
            paid_at=wire.parse_time(data.get("paid_at")), error_code=error.get("code"),
            error_message=error.get("message"), raw=raw)

    def capture(self, request: CaptureRequest) -> OperationResult:
        payload = {"amount": request.amount, "currency": request.currency, "final": request.final}
        return self._operation("POST", f"/payments/{request.reference}/capture", payload, Outcome.SUCCEEDED)

    def cancel(self, reference: str, channel_ref: str | None) -> OperationResult:
        return self._operation("POST", f"/payments/{reference}/cancel", {"id": channel_ref}, Outcome.CANCELED)

    def _operation(self, method: str, path: str, payload: Mapping[str, Any], done: Outcome) -> OperationResult:
        try:
            reply = self._call(method, path, payload)
        except _Unknown as unknown:
            return OperationResult(outcome=Outcome.UNKNOWN, error_message=str(unknown))
        if not reply.ok:
            outcome, retryable = wire.error_outcome(reply.status_code, reply.error.get("type"))
            return OperationResult(outcome=outcome, error_code=reply.error.get("code"),
                                   error_message=reply.error.get("message"), retryable=retryable, raw=reply.raw)
        data = reply.data
        amount = wire.optional_int(data.get("captured_amount" if done is Outcome.SUCCEEDED else "amount"))
        return OperationResult(outcome=done, channel_ref=data.get("id"), amount=amount, raw=reply.raw)

    # ---------------------------------------------------------------------------------- refunds

    def refund(self, request: RefundRequest) -> RefundResult:
        payload = {"refund_reference": request.refund_reference, "reference": request.reference,
                   "payment_id": request.channel_ref, "amount": request.amount,
                   "payment_amount": request.payment_amount, "currency": request.currency,
                   "reason": request.reason, "notify_url": request.notify_url}
        try:
            reply = self._call("POST", "/refunds", payload)
        except _Unknown as unknown:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=request.refund_reference,
                                error_message=str(unknown))
        if not reply.ok:
            outcome, retryable = wire.error_outcome(reply.status_code, reply.error.get("type"))
            return RefundResult(outcome=outcome, refund_reference=request.refund_reference,
                                error_code=reply.error.get("code"), error_message=reply.error.get("message"),
                                retryable=retryable, raw=reply.raw)
        return self._refund_result(reply.data, reply.raw)

    def query_refund(self, refund_reference: str, reference: str) -> RefundResult:
        try:
            reply = self._call("GET", f"/refunds/{refund_reference}")
        except _Unknown as unknown:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=refund_reference,
                                error_message=str(unknown))
        if reply.status_code == 404:
            return RefundResult(outcome=Outcome.NOT_FOUND, refund_reference=refund_reference, raw=reply.raw)
        if not reply.ok:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=refund_reference,
                                error_code=reply.error.get("code"), error_message=reply.error.get("message"),
                                raw=reply.raw)
        return self._refund_result(reply.data, reply.raw)

    @staticmethod
    def _refund_result(data: Mapping[str, Any], raw: Mapping[str, Any]) -> RefundResult:
        error = _error_of(data)
        outcome = wire.settlement_outcome(str(data.get("status")), error.get("type"))
        return RefundResult(outcome=outcome, refund_reference=str(data.get("refund_reference")),
                            channel_refund_ref=data.get("id"), amount=wire.optional_int(data.get("amount")),
                            fee_returned=wire.optional_int(data.get("fee_returned")),
                            error_code=error.get("code"), error_message=error.get("message"),
                            retryable=outcome is Outcome.FAILED and error.get("type") == wire.CHANNEL_ERROR,
                            raw=raw)

    # ---------------------------------------------------------------------------------- notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        header = next((value for key, value in headers.items() if key.lower() == wire.SIGNATURE_HEADER.lower()),
                      None)
        wire.verify(self._secret, header, body, tolerance_seconds=self._tolerance, now=int(time.time()))
        try:
            event = wire.decode(body)
        except ValueError as error:
            raise ValueError("notification body is not a JSON object") from error
        data = event.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("notification has no data object")
        raw = wire.redact(event)
        kind = str(event.get("type", "")).split(".", 1)[0]
        notification_id = str(event.get("id"))
        if kind == "payment":
            return Notification(kind=NotificationKind.PAYMENT, notification_id=notification_id,
                                payment=self._query_result(data, raw), raw=raw)
        if kind == "refund":
            return Notification(kind=NotificationKind.REFUND, notification_id=notification_id,
                                refund=self._refund_result(data, raw), raw=raw)
        if kind == "dispute":
            dispute = {"reference": data.get("reference"), "channel_ref": data.get("payment_id"),
                       "amount": wire.optional_int(data.get("amount")), "currency": data.get("currency"),
                       "reason": data.get("reason"), "evidence_due_by": wire.parse_time(data.get("evidence_due_by")),
                       "dispute_id": data.get("id")}
            return Notification(kind=NotificationKind.DISPUTE, notification_id=notification_id, dispute=dispute,
                                raw=raw)
        raise ValueError(f"unknown notification type {event.get('type')!r}")

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        body = wire.encode({"received": accepted})
        return Acknowledgement(status_code=200 if accepted else 400, body=body, media_type="application/json")

    # ---------------------------------------------------------------------------------- bills, payouts

    def download_bill(self, business_date: date) -> BillFile:
        """The day's CSV statement; raises ``ExternalServiceError`` when it cannot be fetched or verified."""
        try:
            response = self._send("GET", f"/bills/{business_date.isoformat()}")
            if response.status_code != 200:
                raise _Unknown(f"HTTP {response.status_code}")
            content = self._verified(response)
        except _Unknown as unknown:
            raise ExternalServiceError(f"bill download failed: {unknown}", retryable=True,
                                       code="bill_unavailable") from unknown
        return BillFile(channel=self.config.code, business_date=business_date,
                        filename=f"{self.config.code}-{business_date.isoformat()}.csv", media_type="text/csv",
                        content=content)

    def payout(self, request: PayoutRequest) -> PayoutResult:
        payload = {"reference": request.reference, "amount": request.amount, "currency": request.currency,
                   "account_name": request.account_name, "account_number": request.account_number,
                   "bank_code": request.bank_code, "description": request.description}
        try:
            reply = self._call("POST", "/payouts", payload)
        except _Unknown as unknown:
            return PayoutResult(outcome=Outcome.UNKNOWN, reference=request.reference, error_message=str(unknown))
        if not reply.ok:
            outcome, retryable = wire.error_outcome(reply.status_code, reply.error.get("type"))
            return PayoutResult(outcome=outcome, reference=request.reference, error_code=reply.error.get("code"),
                                error_message=reply.error.get("message"), retryable=retryable, raw=reply.raw)
        return self._payout_result(reply.data, reply.raw)

    def query_payout(self, reference: str) -> PayoutResult:
        try:
            reply = self._call("GET", f"/payouts/{reference}")
        except _Unknown as unknown:
            return PayoutResult(outcome=Outcome.UNKNOWN, reference=reference, error_message=str(unknown))
        if reply.status_code == 404:
            return PayoutResult(outcome=Outcome.NOT_FOUND, reference=reference, raw=reply.raw)
        if not reply.ok:
            return PayoutResult(outcome=Outcome.UNKNOWN, reference=reference, error_code=reply.error.get("code"),
                                error_message=reply.error.get("message"), raw=reply.raw)
        return self._payout_result(reply.data, reply.raw)

    @staticmethod
    def _payout_result(data: Mapping[str, Any], raw: Mapping[str, Any]) -> PayoutResult:
        error = _error_of(data)
        outcome = wire.settlement_outcome(str(data.get("status")), error.get("type"))
        return PayoutResult(outcome=outcome, reference=str(data.get("reference")), channel_ref=data.get("id"),
                            fee=wire.optional_int(data.get("fee")), error_code=error.get("code"),
                            error_message=error.get("message"), raw=raw)


def _error_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    error = data.get("error")
    return error if isinstance(error, Mapping) else {}


def make_connector(config: ChannelConfig, client: httpx.Client) -> GenericConnector:
    return GenericConnector(config, client)


#: Every payment method the generic wire accepts.
SUPPORTED_METHODS = frozenset({PaymentMethod.QR, PaymentMethod.H5, PaymentMethod.APP, PaymentMethod.MINI_PROGRAM,
                               PaymentMethod.CARD})
