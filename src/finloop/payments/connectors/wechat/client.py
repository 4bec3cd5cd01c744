"""The WeChat Pay API v3 connector: pay (QR / H5 / app / mini program), query, close, refund, notifications, bill.

Invariants owned here:
- every request carries a fresh ``WECHATPAY2-SHA256-RSA2048`` signature over exactly the bytes sent;
- every reply used is verified with the platform key first; a reply that does not verify, a 5xx, a
  timeout or a broken connection is ``Outcome.UNKNOWN`` (the caller queries before anything else), and a
  notification that does not verify or decrypt raises ``InvalidSignature``;
- only CNY and the customer-action methods are offered; anything else fails here, before any call, with a
  non-retryable ``FAILED`` (``method_not_supported``, ``currency_not_supported``, ...);
- credentials are read once and never logged, put in ``raw`` or in an exception message.

Time: freshness checks use, in order, the ``clock`` given to the constructor, else the module clock
(``set_default_clock``, ``SystemClock`` by default). ``settings["max_clock_skew_seconds"]`` (default 300)
may be ``None`` for a sandbox running in simulated time: signatures are then still verified, freshness not.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from finloop.core.clock import Clock, SystemClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.base import (
    CUSTOMER_ACTION_METHODS,
    Acknowledgement,
    Action,
    BillFile,
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
from finloop.payments.connectors.wechat import signing, wire

#: The prepay id and QR code live two hours at WeChat Pay; an h5_url five minutes.
PREPAY_TTL = timedelta(hours=2)
H5_TTL = timedelta(minutes=5)

_default_clock: Clock = SystemClock()


def set_default_clock(clock: Clock) -> Clock:
    """Use ``clock`` for connectors built without one (a simulation); returns the previous clock."""
    global _default_clock
    previous, _default_clock = _default_clock, clock
    return previous


def new_nonce() -> str:
    return secrets.token_hex(16).upper()


class _Lost(Exception):
    """The outcome of a call cannot be known (transport failure, 5xx, unverifiable or unreadable reply)."""

    def __init__(self, code: str, message: str, raw: Mapping[str, Any] | None = None, *, sent: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.raw: Mapping[str, Any] = raw or {}
        #: False when the request never left (no connection): nothing can have happened at WeChat Pay.
        self.sent = sent


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.data.get("code", ""))

    @property
    def message(self) -> str:
        return str(self.data.get("message", ""))


class WechatConnector:
    """Payer, Canceller, Refunder, NotificationParser and BillDownloader for one WeChat Pay merchant."""

    def __init__(self, config: ChannelConfig, client: httpx.Client, *, clock: Clock | None = None,
                 nonce: Callable[[], str] = new_nonce) -> None:
        missing = [name for name in ("mchid", "appid", "serial_no", "platform_serial") if not config.settings.get(name)]
        missing += [name for name in ("merchant_private_key", "platform_public_key", "api_v3_key")
                    if not config.credentials.get(name)]
        if missing:
            raise ValueError(f"wechat channel {config.code!r} is missing {', '.join(missing)}")
        self.config = config
        self._client = client
        self._clock = clock
        self._nonce = nonce
        self._base = config.base_url.rstrip("/")
        self._mchid = str(config.settings["mchid"])
        self._appid = str(config.settings["appid"])
        self._serial = str(config.settings["serial_no"])
        self._platform_serial = str(config.settings["platform_serial"])
        self._max_skew = _max_skew(config.settings.get("max_clock_skew_seconds", "300"))
        self._private_key = signing.load_private_key(config.credentials["merchant_private_key"])
        self._platform_key = signing.load_public_key(config.credentials["platform_public_key"])
        self._api_v3_key = config.credentials["api_v3_key"]
        if len(self._api_v3_key.encode()) != 32:
            raise ValueError(f"wechat channel {config.code!r}: api_v3_key must be 32 bytes")

    def _now(self) -> datetime:
        return (self._clock or _default_clock).now()

    # -------------------------------------------------------------------------------------- transport

    def _url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        url = self._base + path
        return f"{url}?{urlencode(params)}" if params else url

    def _authorization(self, method: str, url: str, body: str) -> str:
        # What WeChat Pay verifies is the request target exactly as sent: path and query, encoded.
        target = httpx.URL(url).raw_path.decode()
        return signing.authorization(mchid=self._mchid, serial_no=self._serial, private_key=self._private_key,
                                     method=method, path=target, timestamp=int(self._now().timestamp()),
                                     nonce=self._nonce(), body=body)

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> httpx.Response:
        text = wire.dumps(body) if body is not None else ""
        headers = {"Authorization": self._authorization(method, url, text), "Accept": "application/json",
                   "User-Agent": "finloop-wechatpay/1"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return self._client.request(method, url, content=text.encode() if body is not None else None,
                                        headers=headers, timeout=self.config.timeout_seconds)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise _Lost("connect_error", type(error).__name__, sent=False) from error
        except httpx.TransportError as error:
            raise _Lost("transport_error", type(error).__name__) from error

    def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
              body: Mapping[str, Any] | None = None) -> _Reply:
        """Send a signed request; return a verified reply with status < 500, or raise ``_Lost``."""
        response = self._send(method, self._url(path, params), body)
        if response.status_code >= 500:
            raise _Lost(f"http_{response.status_code}", "WeChat Pay answered with a server error",
                        {"status": response.status_code, **self._peek(response.content)})
        try:
            self._verify(response.headers, response.content)
        except InvalidSignature as error:
            raise _Lost("unverified_reply", str(error),
                        {"status": response.status_code, **self._peek(response.content)}) from error
        if not response.content:
            return _Reply(response.status_code, {})
        try:
            data = json.loads(response.content)
        except ValueError as error:
            raise _Lost("invalid_reply", "the reply is not JSON", {"status": response.status_code}) from error
        if not isinstance(data, dict):
            raise _Lost("invalid_reply", "the reply is not a JSON object", {"status": response.status_code})
        return _Reply(response.status_code, data)

    @staticmethod
    def _peek(content: bytes) -> dict[str, Any]:
        """The error code of an untrusted reply, for the record only (never acted on)."""
        try:
            data = json.loads(content)
        except ValueError:
            return {}
        return {"code": data.get("code")} if isinstance(data, dict) and "code" in data else {}

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        now = self._now()
        # Without a freshness window the check degenerates to "signed at all", which the signature covers.
        max_skew = self._max_skew if self._max_skew is not None else timedelta.max
        signing.verify_signed(self._platform_key, headers=headers, body=body,
                              expected_serial=self._platform_serial, now=now,
                              max_skew=max_skew)

    # -------------------------------------------------------------------------------------- pay

    def pay(self, request: PayRequest) -> PayResult:
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        kind, _ = wire.METHOD_PATHS[request.method]
        notify_url = request.notify_url or self.config.settings.get("notify_url")
        # The payer's openid for this appid: metadata["openid"], else customer_ref when the caller keys
        # customers by openid.
        openid = request.metadata.get("openid") or request.customer_ref
        if request.method is PaymentMethod.MINI_PROGRAM and not openid:
            return _failed("openid_required", "mini program payments need the payer's openid as customer_ref")
        body = wire.pay_body(request, appid=self._appid, mchid=self._mchid, notify_url=str(notify_url),
                             openid=openid)
        try:
            reply = self._call("POST", wire.PAY_PATH.format(kind=kind), body=body)
        except _Lost as lost:
            if not lost.sent:
                return PayResult(outcome=Outcome.FAILED, error_code=lost.code, error_message=lost.message,
                                 retryable=True)
            return PayResult(outcome=Outcome.UNKNOWN, error_code=lost.code, error_message=lost.message,
                             raw=lost.raw)
        if not reply.ok:
            mapping = wire.classify_error("pay", reply.status, reply.code)
            return PayResult(outcome=mapping.outcome, error_code=reply.code or f"http_{reply.status}",
                             error_message=reply.message, retryable=mapping.retryable, raw=wire.redact(reply.data))
        action = self._action(request, reply.data)
        if action is None:
            return PayResult(outcome=Outcome.UNKNOWN, error_code="invalid_reply",
                             error_message="the reply carries no code_url / h5_url / prepay_id",
                             raw=wire.redact(reply.data))
        return PayResult(outcome=Outcome.REQUIRES_ACTION, action=action, raw=wire.redact(reply.data))

    def _refuse(self, request: PayRequest) -> PayResult | None:
        if request.method not in CUSTOMER_ACTION_METHODS:
            return _failed("method_not_supported", f"WeChat Pay does not take {request.method} payments")
        if request.currency != wire.CURRENCY:
            return _failed("currency_not_supported", "WeChat Pay domestic payments are in CNY only")
        if not request.capture:
            return _failed("manual_capture_not_supported", "WeChat Pay has no authorise-then-capture")
        if isinstance(request.amount, bool) or not isinstance(request.amount, int) or request.amount <= 0:
            return _failed("invalid_amount", "the amount is a positive integer of fen")
        if not (request.notify_url or self.config.settings.get("notify_url")):
            return _failed("notify_url_required", "WeChat Pay needs a notify_url for every order")
        return None

    def _action(self, request: PayRequest, data: Mapping[str, Any]) -> Action | None:
        # The caller's expiry is the one it enforces (on its own clock); WeChat Pay's TTL is the fallback.
        default_ttl = H5_TTL if request.method is PaymentMethod.H5 else PREPAY_TTL
        expires_at = request.expires_at or self._now() + default_ttl
        if request.method is PaymentMethod.QR:
            code_url = data.get("code_url")
            return Action(type="qr_code", qr_code=str(code_url), expires_at=expires_at) if code_url else None
        if request.method is PaymentMethod.H5:
            h5_url = data.get("h5_url")
            if not h5_url:
                return None
            url = str(h5_url)
            if request.return_url:
                # WeChat Pay sends the customer back here after the payment page.
                url += "&" + urlencode({"redirect_url": request.return_url})
            return Action(type="redirect", redirect_url=url, expires_at=expires_at)
        prepay_id = data.get("prepay_id")
        if not prepay_id:
            return None
        return Action(type="app_invoke", app_payload=self.invoke_payload(request.method, str(prepay_id)),
                      expires_at=expires_at)

    def invoke_payload(self, method: PaymentMethod, prepay_id: str) -> str:
        """The signed parameters the app (``PayReq``) or mini program (``wx.requestPayment``) needs, as JSON."""
        timestamp = int(self._now().timestamp())
        nonce = self._nonce()
        if method is PaymentMethod.APP:
            sign = signing.app_pay_sign(self._private_key, appid=self._appid, timestamp=timestamp, nonce=nonce,
                                        prepay_id=prepay_id)
            payload = {"appid": self._appid, "partnerid": self._mchid, "prepayid": prepay_id,
                       "package": "Sign=WXPay", "noncestr": nonce, "timestamp": str(timestamp), "sign": sign}
        else:
            package = f"prepay_id={prepay_id}"
            pay_sign = signing.jsapi_pay_sign(self._private_key, appid=self._appid, timestamp=timestamp,
                                              nonce=nonce, package=package)
            payload = {"appId": self._appid, "timeStamp": str(timestamp), "nonceStr": nonce, "package": package,
                       "signType": "RSA", "paySign": pay_sign}
        return wire.dumps(payload)

    # -------------------------------------------------------------------------------------- query, close

    def query(self, reference: str) -> QueryResult:
        try:
            reply = self._call("GET", wire.QUERY_PATH.format(out_trade_no=reference), params={"mchid": self._mchid})
        except _Lost as lost:
            return QueryResult(outcome=Outcome.UNKNOWN, reference=reference, error_code=lost.code,
                               error_message=lost.message, raw=lost.raw)
        if not reply.ok:
            mapping = wire.classify_error("query", reply.status, reply.code)
            return QueryResult(outcome=mapping.outcome, reference=reference,
                               error_code=reply.code or f"http_{reply.status}", error_message=reply.message,
                               raw=wire.redact(reply.data))
        return wire.query_result(reference, reply.data)

    def cancel(self, reference: str, channel_ref: str | None) -> OperationResult:
        """Close an unpaid order (POST .../close, 204). Closing a closed order is a success."""
        try:
            reply = self._call("POST", wire.CLOSE_PATH.format(out_trade_no=reference), body={"mchid": self._mchid})
        except _Lost as lost:
            return OperationResult(outcome=Outcome.UNKNOWN if lost.sent else Outcome.FAILED, channel_ref=channel_ref,
                                   error_code=lost.code, error_message=lost.message, retryable=not lost.sent,
                                   raw=lost.raw)
        if reply.ok:
            return OperationResult(outcome=Outcome.CANCELED, channel_ref=channel_ref, raw=wire.redact(reply.data))
        mapping = wire.classify_error("close", reply.status, reply.code)
        return OperationResult(outcome=mapping.outcome, channel_ref=channel_ref,
                               error_code=reply.code or f"http_{reply.status}", error_message=reply.message,
                               retryable=mapping.retryable, raw=wire.redact(reply.data))

    # -------------------------------------------------------------------------------------- refunds

    def refund(self, request: RefundRequest) -> RefundResult:
        if request.currency != wire.CURRENCY:
            return RefundResult(outcome=Outcome.FAILED, refund_reference=request.refund_reference,
                                error_code="currency_not_supported", error_message="CNY only")
        try:
            reply = self._call("POST", wire.REFUND_PATH, body=wire.refund_body(request))
        except _Lost as lost:
            return RefundResult(outcome=Outcome.UNKNOWN if lost.sent else Outcome.FAILED,
                                refund_reference=request.refund_reference, error_code=lost.code,
                                error_message=lost.message, retryable=not lost.sent, raw=lost.raw)
        if not reply.ok:
            return self._refund_error("refund", request.refund_reference, reply)
        return wire.refund_result(request.refund_reference, reply.data)

    def query_refund(self, refund_reference: str, reference: str) -> RefundResult:
        try:
            reply = self._call("GET", wire.REFUND_QUERY_PATH.format(out_refund_no=refund_reference))
        except _Lost as lost:
            return RefundResult(outcome=Outcome.UNKNOWN, refund_reference=refund_reference, error_code=lost.code,
                                error_message=lost.message, raw=lost.raw)
        if not reply.ok:
            return self._refund_error("query_refund", refund_reference, reply)
        return wire.refund_result(refund_reference, reply.data)

    @staticmethod
    def _refund_error(operation: str, refund_reference: str, reply: _Reply) -> RefundResult:
        mapping = wire.classify_error(operation, reply.status, reply.code)
        return RefundResult(outcome=mapping.outcome, refund_reference=refund_reference,
                            error_code=reply.code or f"http_{reply.status}", error_message=reply.message,
                            retryable=mapping.retryable, raw=wire.redact(reply.data))

    # -------------------------------------------------------------------------------------- notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify the platform signature, decrypt the resource, map it. Raises ``InvalidSignature`` when
        the message is not WeChat Pay's (or is stale), ``ValueError`` for a verified message we cannot use."""
        self._verify(headers, body)
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            event_type = str(envelope["event_type"])
            notification_id = str(envelope["id"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError("the notification is not a WeChat Pay event") from error
        if not isinstance(resource, dict) or resource.get("algorithm") != signing.ALGORITHM:
            raise ValueError("the notification resource is not AEAD_AES_256_GCM")
        plaintext = signing.decrypt(self._api_v3_key, nonce=str(resource.get("nonce", "")),
                                    associated_data=str(resource.get("associated_data", "")),
                                    ciphertext=str(resource.get("ciphertext", "")))
        try:
            data = json.loads(plaintext)
        except ValueError as error:
            raise ValueError("the decrypted resource is not JSON") from error
        if not isinstance(data, dict):
            raise ValueError("the decrypted resource is not a JSON object")
        raw = {"id": notification_id, "event_type": event_type, "create_time": envelope.get("create_time"),
               "resource": wire.redact(data)}
        if event_type.startswith("TRANSACTION."):
            payment = wire.query_result(str(data.get("out_trade_no", "")), data)
            return Notification(kind=NotificationKind.PAYMENT, notification_id=notification_id, payment=payment,
                                raw=raw)
        if event_type.startswith("REFUND."):
            refund = wire.refund_result(str(data.get("out_refund_no", "")), data)
            return Notification(kind=NotificationKind.REFUND, notification_id=notification_id, refund=refund,
                                raw=raw)
        if event_type == SANDBOX_DISPUTE_EVENT:
            dispute = {key: data.get(key) for key in ("reference", "channel_ref", "amount", "currency", "reason",
                                                      "evidence_due_by")}
            return Notification(kind=NotificationKind.DISPUTE, notification_id=notification_id, dispute=dispute,
                                raw=raw)
        raise ValueError(f"unsupported WeChat Pay event_type {event_type!r}")

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        # WeChat Pay wants 200/204 with no body for "received", anything else plus {code: FAIL} to retry.
        if accepted:
            return Acknowledgement(status_code=200, body=b"", media_type="application/json")
        body = wire.dumps({"code": "FAIL", "message": "not accepted"}).encode()
        return Acknowledgement(status_code=500, body=body, media_type="application/json")

    # -------------------------------------------------------------------------------------- bill

    def download_bill(self, business_date: date) -> BillFile:
        """The ALL trade bill of ``business_date`` (Beijing time). A day without trades is an empty bill.
        Raises ``ExternalServiceError`` when the bill cannot be had (``retryable`` says whether to try later)."""
        try:
            reply = self._call("GET", wire.TRADE_BILL_PATH,
                               params={"bill_date": business_date.isoformat(), "bill_type": "ALL"})
        except _Lost as lost:
            raise ExternalServiceError(f"WeChat Pay bill request failed: {lost.message}", retryable=True,
                                       code=lost.code) from lost
        filename = wire.bill_filename(self._mchid, business_date)
        if reply.code == "NO_STATEMENT_EXIST":
            return BillFile(channel=self.config.code, business_date=business_date, filename=filename,
                            media_type="text/csv", content=wire.format_trade_bill([]))
        if not reply.ok:
            retryable = reply.code in ("STATEMENT_CREATING", *wire.RETRYABLE_CODES) or reply.status == 429
            raise ExternalServiceError(f"WeChat Pay refused the bill: {reply.code} {reply.message}",
                                       retryable=retryable, code=reply.code or f"http_{reply.status}")
        download_url = str(reply.data.get("download_url", ""))
        if not download_url:
            raise ExternalServiceError("WeChat Pay gave no download_url", retryable=True, code="invalid_reply")
        try:
            # The file itself is not signed: its integrity comes from the hash in the signed reply above.
            response = self._send("GET", download_url, None)
        except _Lost as lost:
            raise ExternalServiceError("WeChat Pay bill download failed", retryable=True, code=lost.code) from lost
        if response.status_code != 200:
            raise ExternalServiceError("WeChat Pay bill download failed", retryable=True,
                                       code=f"http_{response.status_code}")
        content = response.content
        expected = str(reply.data.get("hash_value", "")).lower()
        algorithm = str(reply.data.get("hash_type", "SHA1")).upper()
        if algorithm not in ("SHA1", "SHA256"):
            raise ExternalServiceError(f"unknown bill hash_type {algorithm}", retryable=False, code="invalid_reply")
        # SHA-1 is what WeChat Pay publishes for bills; it guards against corruption, the signature against forgery.
        actual = hashlib.new(algorithm.lower(), content).hexdigest()
        if not expected or not secrets.compare_digest(actual, expected):
            raise ExternalServiceError("the downloaded bill does not match its hash", retryable=True,
                                       code="bill_hash_mismatch")
        return BillFile(channel=self.config.code, business_date=business_date, filename=filename,
                        media_type="text/csv", content=content)


#: A sandbox-only event: WeChat Pay v3 has no dispute webhook (complaints are queried, not pushed as disputes).
SANDBOX_DISPUTE_EVENT = "SANDBOX.DISPUTE.CREATED"


def _max_skew(value: object) -> timedelta | None:
    """The freshness window from settings (which may arrive as text); ``None``/"none"/0 turn the check off."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        seconds = int(str(value))
    except ValueError as error:
        raise ValueError("max_clock_skew_seconds must be a whole number of seconds or none") from error
    return timedelta(seconds=seconds) if seconds > 0 else None


def _failed(code: str, message: str) -> PayResult:
    return PayResult(outcome=Outcome.FAILED, error_code=code, error_message=message, retryable=False)


def make_connector(config: ChannelConfig, client: httpx.Client) -> WechatConnector:
    """The registry factory."""
    return WechatConnector(config, client)
