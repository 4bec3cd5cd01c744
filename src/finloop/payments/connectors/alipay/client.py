"""The Alipay connector: the openapi gateway (``gateway.do``), RSA2-signed form posts, signed JSON replies.

Invariants owned here:
- every request is signed with the app private key; every reply and notification is verified with the
  Alipay public key before anything in it is believed — a reply that does not verify is ``UNKNOWN``;
- a call that may have reached Alipay without a verified answer (timeout, reset, 5xx, ``ACQ.SYSTEM_ERROR``)
  is ``UNKNOWN``; only a connection that was never made is a retryable ``FAILED``;
- our attempt id is ``out_trade_no`` and our refund id is ``out_request_no``, so a retried call can only
  ever act once at Alipay;
- H5 and app payments are not API calls: the signed parameter set goes to the customer, and the trade
  exists at Alipay only once the customer opens it (until then ``query`` answers ``NOT_FOUND``);
- no network call happens in ``parse_notification`` and no reply field naming the buyer reaches ``raw``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from finloop.core.clock import Clock, SystemClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.alipay import wire
from finloop.payments.connectors.alipay.signing import (
    NOTIFICATION_EXCLUDED,
    load_private_key,
    load_public_key,
    sign_params,
    verify_params,
    verify_response,
)
from finloop.payments.connectors.base import (
    Acknowledgement,
    Action,
    BillFile,
    ChannelConfig,
    InvalidSignature,
    Notification,
    NotificationKind,
    OperationResult,
    Outcome,
    PayRequest,
    PayResult,
    QueryResult,
    RefundRequest,
    RefundResult,
)

CURRENCY = "CNY"

_default_clock: Clock = SystemClock()


def set_default_clock(clock: Clock) -> Clock:
    """Use ``clock`` (for request timestamps) in connectors built without one; returns the previous clock."""
    global _default_clock
    previous, _default_clock = _default_clock, clock
    return previous


@dataclass(frozen=True, slots=True)
class _Reply:
    """A gateway answer: either a verified response object (``body``) or why there is none."""

    body: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None      # set when the call did not yield a verified success/failure body
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is None and self.body.get("code") == wire.SUCCESS_CODE

    @property
    def sub_code(self) -> str | None:
        value = self.body.get("sub_code")
        return str(value) if value else None


class AlipayConnector:
    """Pays (QR, H5, app, mini program), queries, closes, refunds, parses notifications, downloads bills."""

    provider = "alipay"

    def __init__(self, config: ChannelConfig, client: httpx.Client, *, clock: Clock | None = None) -> None:
        self.config = config
        self._http = client
        self._clock = clock
        self._app_id = str(config.settings["app_id"])
        self._private_key = load_private_key(config.credentials["app_private_key"])
        self._alipay_key = load_public_key(config.credentials["alipay_public_key"])
        self._gateway = config.base_url.rstrip("/") + "/gateway.do"

    # ------------------------------------------------------------------------------------------ wire

    def signed_params(self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None,
                      return_url: str | None = None) -> dict[str, str]:
        """The common parameters plus ``biz_content``, signed."""
        params = {
            "app_id": self._app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": wire.format_time((self._clock or _default_clock).now()),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        params["sign"] = sign_params(params, self._private_key)
        return params

    def _send(self, method: str, url: str, *, data: Mapping[str, str] | None = None) -> httpx.Response:
        # build_request + send: the channel's timeout applies to this request whatever client we were given.
        request = self._http.build_request(method, url, data=data, timeout=self.config.timeout_seconds)
        return self._http.send(request)

    def _call(self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None) -> _Reply:
        params = self.signed_params(method, biz, notify_url=notify_url)
        try:
            response = self._send("POST", self._gateway, data=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # Nothing was sent: Alipay cannot have acted.
            return _Reply(outcome=Outcome.FAILED, error_code="connect_error",
                          error_message=type(error).__name__, retryable=True)
        except httpx.TimeoutException as error:
            return _Reply(outcome=Outcome.UNKNOWN, error_code="timeout", error_message=type(error).__name__,
                          retryable=True)
        except httpx.TransportError as error:
            return _Reply(outcome=Outcome.UNKNOWN, error_code="network_error", error_message=type(error).__name__,
                          retryable=True)
        if response.status_code != 200:
            return _Reply(outcome=Outcome.UNKNOWN, error_code=f"http_{response.status_code}",
                          error_message="alipay gateway answered with an HTTP error", retryable=True)
        try:
            body = verify_response(response.text, method, self._alipay_key)
        except InvalidSignature as error:
            return _Reply(outcome=Outcome.UNKNOWN, error_code="invalid_signature", error_message=str(error),
                          retryable=True)
        if body.get("code") == wire.SUCCESS_CODE:
            return _Reply(body=body)
        outcome, retryable = wire.classify_error(_str(body.get("code")), _str(body.get("sub_code")))
        return _Reply(body=body, outcome=outcome, error_code=_str(body.get("sub_code")) or _str(body.get("code")),
                      error_message=_str(body.get("sub_msg")) or _str(body.get("msg")), retryable=retryable)

    # ------------------------------------------------------------------------------------------ pay

    def pay(self, request: PayRequest) -> PayResult:
        route = wire.PAY_METHODS.get(request.method)
        if route is None:
            return PayResult(outcome=Outcome.FAILED, error_code="method_not_supported",
                             error_message=f"alipay does not take {request.method.value} payments")
        if not request.capture:
            return PayResult(outcome=Outcome.FAILED, error_code="manual_capture_not_supported",
                             error_message="alipay trades have no authorise-then-capture here")
        if request.currency != CURRENCY:
            return PayResult(outcome=Outcome.FAILED, error_code="currency_not_supported",
                             error_message=f"alipay trades are in {CURRENCY}")
        method, product_code = route
        biz: dict[str, Any] = {
            "out_trade_no": request.reference,
            "total_amount": wire.to_yuan(request.amount, request.currency),
            "subject": request.description[:256] or request.reference,
            "product_code": product_code,
        }
        if request.expires_at is not None:
            biz["time_expire"] = wire.format_time(request.expires_at)
        if method == wire.WAP_PAY and request.return_url:
            biz["quit_url"] = request.return_url
        if method == wire.CREATE:
            if not request.customer_ref:
                return PayResult(outcome=Outcome.FAILED, error_code="missing_buyer_id",
                                 error_message="a mini program payment needs the buyer's id as customer_ref")
            biz["buyer_id"] = request.customer_ref

        if method in wire.CLIENT_SIDE_METHODS:
            params = self.signed_params(method, biz, notify_url=request.notify_url,
                                        return_url=request.return_url if method == wire.WAP_PAY else None)
            order = urlencode(params)
            if method == wire.WAP_PAY:
                action = Action(type="redirect", redirect_url=f"{self._gateway}?{order}",
                                expires_at=request.expires_at)
            else:
                action = Action(type="app_invoke", app_payload=order, expires_at=request.expires_at)
            return PayResult(outcome=Outcome.REQUIRES_ACTION, action=action, raw={"method": method})

        reply = self._call(method, biz, notify_url=request.notify_url)
        if reply.ok:
            raw = wire.redact(reply.body)
            if method == wire.PRECREATE:
                return PayResult(outcome=Outcome.REQUIRES_ACTION, raw=raw,
                                 action=Action(type="qr_code", qr_code=_str(reply.body.get("qr_code")),
                                               expires_at=request.expires_at))
            trade_no = _str(reply.body.get("trade_no"))
            return PayResult(outcome=Outcome.REQUIRES_ACTION, channel_ref=trade_no, raw=raw,
                             action=Action(type="app_invoke", app_payload=trade_no, expires_at=request.expires_at))
        if reply.sub_code == wire.TRADE_HAS_SUCCESS:
            # The same out_trade_no was paid already (a retry after a lost reply): report what Alipay holds.
            found = self.query(request.reference)
            return PayResult(outcome=found.outcome, channel_ref=found.channel_ref, fee=found.fee,
                             error_code=reply.sub_code, raw=found.raw)
        if reply.sub_code == wire.TRADE_HAS_CLOSE:
            return PayResult(outcome=Outcome.CANCELED, error_code=reply.sub_code,
                             error_message=reply.error_message, raw=wire.redact(reply.body))
        return PayResult(outcome=reply.outcome or Outcome.UNKNOWN, error_code=reply.error_code,
                         error_message=reply.error_message, retryable=reply.retryable, raw=wire.redact(reply.body))

    def query(self, reference: str) -> QueryResult:
        reply = self._call(wire.QUERY, {"out_trade_no": reference})
        if not reply.ok:
            outcome = Outcome.NOT_FOUND if reply.sub_code == wire.TRADE_NOT_EXIST else Outcome.UNKNOWN
            return QueryResult(outcome=outcome, reference=reference, error_code=reply.error_code,
                               error_message=reply.error_message, raw=wire.redact(reply.body))
        return self._trade_result(reply.body, reference)

    def _trade_result(self, body: Mapping[str, Any], reference: str) -> QueryResult:
        """A trade as ``query`` or a notification shows it."""
        currency = _str(body.get("trans_currency")) or CURRENCY
        paid_text = _str(body.get("send_pay_date")) or _str(body.get("gmt_payment"))
        outcome = wire.trade_outcome(_str(body.get("trade_status")), paid=bool(paid_text))
        amount = _amount(body.get("total_amount"), currency)
        fee = _amount(body.get("charge_amount"), currency)
        return QueryResult(
            outcome=outcome, reference=_str(body.get("out_trade_no")) or reference,
            channel_ref=_str(body.get("trade_no")), amount=amount,
            captured_amount=amount if outcome is Outcome.SUCCEEDED else None,
            currency=currency, fee=fee, paid_at=wire.parse_time(paid_text), raw=wire.redact(body))

    # ------------------------------------------------------------------------------------------ close

    def cancel(self, reference: str, channel_ref: str | None) -> OperationResult:
        biz = {"out_trade_no": reference}
        if channel_ref:
            biz["trade_no"] = channel_ref
        reply = self._call(wire.CLOSE, biz)
        raw = wire.redact(reply.body)
        if reply.ok:
            return OperationResult(outcome=Outcome.CANCELED, channel_ref=_str(reply.body.get("trade_no")), raw=raw)
        if reply.sub_code == wire.TRADE_NOT_EXIST:
            return OperationResult(outcome=Outcome.NOT_FOUND, error_code=reply.sub_code,
                                   error_message=reply.error_message, raw=raw)
        return OperationResult(outcome=reply.outcome or Outcome.UNKNOWN, error_code=reply.error_code,
                               error_message=reply.error_message, retryable=reply.retryable, raw=raw)

    # ------------------------------------------------------------------------------------------ refunds

    def refund(self, request: RefundRequest) -> RefundResult:
        if request.currency != CURRENCY:
            return RefundResult(outcome=Outcome.FAILED, refund_reference=request.refund_reference,
                                error_code="currency_not_supported", error_message=f"alipay refunds in {CURRENCY}")
        biz = {
            "out_trade_no": request.reference,
            "refund_amount": wire.to_yuan(request.amount, request.currency),
            "out_request_no": request.refund_reference,
        }
        if request.channel_ref:
            biz["trade_no"] = request.channel_ref
        if request.reason:
            biz["refund_reason"] = request.reason[:256]
        reply = self._call(wire.REFUND, biz, notify_url=request.notify_url)
        raw = wire.redact(reply.body)
        if reply.ok:
            if reply.body.get("fund_change") == "Y":
                return RefundResult(outcome=Outcome.SUCCEEDED, refund_reference=request.refund_reference,
                                    amount=request.amount, raw=raw)
            # "N": no money moved by this call (a repeat, or still in progress): ask what happened.
            return self.query_refund(request.refund_reference, request.reference)
        if reply.sub_code == wire.TRADE_NOT_EXIST:
            return RefundResult(outcome=Outcome.NOT_FOUND, refund_reference=request.refund_reference,
                                error_code=reply.sub_code, error_message=reply.error_message, raw=raw)
        outcome = reply.outcome or Outcome.UNKNOWN
        if outcome is Outcome.DECLINED:  # refunds have no customer-side refusal
            outcome = Outcome.FAILED
        return RefundResult(outcome=outcome, refund_reference=request.refund_reference,
                            error_code=reply.error_code, error_message=reply.error_message,
                            retryable=reply.retryable, raw=raw)

    def query_refund(self, refund_reference: str, reference: str) -> RefundResult:
        reply = self._call(wire.REFUND_QUERY, {"out_trade_no": reference, "out_request_no": refund_reference,
                                               "query_options": ["gmt_refund_pay"]})
        raw = wire.redact(reply.body)
        if not reply.ok:
            outcome = Outcome.NOT_FOUND if reply.sub_code == wire.TRADE_NOT_EXIST else Outcome.UNKNOWN
            return RefundResult(outcome=outcome, refund_reference=refund_reference, error_code=reply.error_code,
                                error_message=reply.error_message, retryable=reply.retryable, raw=raw)
        if not reply.body.get("refund_amount"):
            # Alipay answers 10000 without refund data when it holds no such refund.
            return RefundResult(outcome=Outcome.NOT_FOUND, refund_reference=refund_reference, raw=raw)
        status = _str(reply.body.get("refund_status")) or "REFUND_SUCCESS"
        outcome = {"REFUND_SUCCESS": Outcome.SUCCEEDED, "REFUND_PROCESSING": Outcome.PROCESSING,
                   "REFUND_FAIL": Outcome.FAILED}.get(status, Outcome.UNKNOWN)
        currency = _str(reply.body.get("trans_currency")) or CURRENCY
        return RefundResult(outcome=outcome, refund_reference=refund_reference,
                            amount=_amount(reply.body.get("refund_amount"), currency), raw=raw)

    # ------------------------------------------------------------------------------------------ notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        params = _form(body)
        verify_params(params, self._alipay_key, NOTIFICATION_EXCLUDED)
        if params.get("app_id") != self._app_id:
            raise InvalidSignature("alipay notification is for another app")
        raw = wire.redact({k: v for k, v in params.items() if k != "sign"})
        notification_id = params.get("notify_id") or ""
        reference = params.get("out_trade_no", "")
        if params.get("out_biz_no") and (params.get("refund_fee") or params.get("gmt_refund")):
            # A refund moved money. refund_fee is the trade's cumulative refunded total, not this refund's.
            refund = RefundResult(outcome=Outcome.SUCCEEDED, refund_reference=params["out_biz_no"], raw=raw)
            return Notification(kind=NotificationKind.REFUND, notification_id=notification_id, refund=refund,
                                raw=raw)
        return Notification(kind=NotificationKind.PAYMENT, notification_id=notification_id,
                            payment=self._trade_result(params, reference), raw=raw)

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        # Alipay stops retrying only on the exact body "success".
        return Acknowledgement(status_code=200, body=b"success" if accepted else b"fail", media_type="text/plain")

    # ------------------------------------------------------------------------------------------ bill

    def download_bill(self, business_date: date) -> BillFile:
        reply = self._call(wire.BILL_URL, {"bill_type": wire.BILL_TYPE, "bill_date": business_date.isoformat()})
        url = _str(reply.body.get("bill_download_url")) if reply.ok else None
        if not url:
            raise ExternalServiceError(f"alipay bill for {business_date} unavailable: {reply.error_message}",
                                       code=reply.error_code or "bill_unavailable",
                                       retryable=reply.retryable or reply.outcome is Outcome.UNKNOWN)
        try:
            response = self._send("GET", url)
        except httpx.TransportError as error:
            raise ExternalServiceError("alipay bill download failed", code="bill_download_failed",
                                       retryable=True) from error
        if response.status_code != 200:
            raise ExternalServiceError(f"alipay bill download answered {response.status_code}",
                                       code="bill_download_failed", retryable=response.status_code >= 500)
        filename = _filename(response.headers.get("content-disposition")) or (
            f"{self._app_id}_{business_date:%Y%m%d}_trade.csv")
        return BillFile(channel=self.config.code, business_date=business_date, filename=filename,
                        media_type=response.headers.get("content-type", wire.BILL_MEDIA_TYPE),
                        content=response.content)


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _amount(value: object, currency: str) -> int | None:
    text = _str(value)
    return None if text is None else wire.from_yuan(text, currency)


def _form(body: bytes) -> dict[str, str]:
    """Decode a form body; Alipay posts in the charset the app chose (utf-8 here, gbk for older apps)."""
    charset = dict(parse_qsl(body.decode("latin-1"))).get("charset", "utf-8")
    try:
        return dict(parse_qsl(body.decode(charset), keep_blank_values=True, encoding=charset, errors="strict"))
    except (LookupError, UnicodeDecodeError) as error:
        raise InvalidSignature("alipay notification is not decodable") from error


def _filename(disposition: str | None) -> str | None:
    if not disposition or "filename=" not in disposition:
        return None
    return disposition.split("filename=", 1)[1].strip().strip('"') or None
