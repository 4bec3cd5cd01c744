"""A simulated WeChat Pay: the API v3 wire, its signatures and its trade bill, driven by the SandboxEngine.

Invariants owned here:
- a request whose merchant signature, serial number or mchid does not check is answered 401 SIGN_ERROR,
  unsigned (as WeChat Pay does) and never reaches the engine; its timestamp must be within 5 minutes of
  the engine's clock when that clock is real time (realtime mode, or ``check_request_freshness=True``);
- every other answer below 503 is signed with the sandbox's platform key, so the connector verifies the
  sandbox exactly as it verifies WeChat Pay; outages answer 503 and lost replies 504;
- notifications are WeChat Pay events: the resource is AEAD_AES_256_GCM-encrypted with the APIv3 key and
  the POST is signed like a reply; duplicates of one event keep its ``id``;
- the keys are fixed, published SANDBOX-ONLY test keys (never use them for a real account), so a
  restarted sandbox still matches a registered channel; each channel has its own APIv3 key derived from
  its name, and ``channel_config`` hands out exactly the matching credentials;
- this module translates only: every decision (success, decline, fee, timing) is the engine's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request, Response

from finloop.core.clock import Clock
from finloop.payments.connectors.base import BillFile, ChannelConfig, InvalidSignature
from finloop.payments.connectors.sandbox.engine import (
    BillLine,
    PendingNotification,
    RefundRecord,
    SandboxEngine,
    SandboxFailure,
    Transaction,
    TxStatus,
)
from finloop.payments.connectors.wechat import signing, wire
from finloop.payments.connectors.wechat.client import SANDBOX_DISPUTE_EVENT

#: WeChat Pay's own documentation values, so sandbox traffic looks like the real thing.
SANDBOX_MCHID = "1900000109"
SANDBOX_APPID = "wxd678efh567hg6787"

_KIND_METHODS = {"native": "qr", "h5": "h5", "app": "app", "jsapi": "mini_program"}
_METHOD_TRADE_TYPES = {method.value: trade_type for method, (_, trade_type) in wire.METHOD_PATHS.items()}
_DECLINES = {"insufficient_funds": "NOTENOUGH"}
_ERRORS = {"rate_limited": (429, "FREQUENCY_LIMITED"), "issuer_unavailable": (403, "BANKERROR")}


@dataclass(frozen=True)
class SandboxKeys:
    """The sandbox's key material. ``api_v3_secret`` is not the APIv3 key itself: each channel's key is
    derived from it and the channel name (``api_v3_key``), so two sandbox channels never share one."""

    merchant_private_key: str
    merchant_serial: str
    platform_private_key: str
    platform_serial: str
    api_v3_secret: str

    def api_v3_key(self, channel: str) -> str:
        return hashlib.sha256(f"{self.api_v3_secret}:{channel}".encode()).hexdigest()[:32]


def sandbox_keys() -> SandboxKeys:
    """The published sandbox-only keys: fixed, so a restarted sandbox still matches a registered channel."""
    return SandboxKeys(merchant_private_key=SANDBOX_MERCHANT_PRIVATE_KEY,
                       merchant_serial="3775B6A45ACD588826D15E583A95F5DD00000001",
                       platform_private_key=SANDBOX_PLATFORM_PRIVATE_KEY,
                       platform_serial="PUB_KEY_ID_0119000001092026030200000000000001",
                       api_v3_secret="finloop-wechat-sandbox")  # noqa: S106 - a published test value


def public_pem(private_pem: str) -> str:
    public = signing.load_private_key(private_pem).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class _Reject(Exception):
    """An API error answer: status and WeChat Pay's ``{code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class WechatSandbox:
    """The ``SandboxProvider`` for ``"wechat"``."""

    name = "wechat"

    def __init__(self, keys: SandboxKeys | None = None, *, mchid: str = SANDBOX_MCHID,
                 appid: str = SANDBOX_APPID, check_request_freshness: bool | None = None) -> None:
        """``check_request_freshness``: refuse requests signed more than 5 minutes from the engine's clock.
        ``None`` (default) checks only in realtime mode: in simulated time a client on the system clock
        would look stale."""
        self.check_request_freshness = check_request_freshness
        self.keys = keys or sandbox_keys()
        self.mchid = mchid
        self.appid = appid
        self._merchant_key = signing.load_private_key(self.keys.merchant_private_key).public_key()
        self._platform_key = signing.load_private_key(self.keys.platform_private_key)
        self._engines: dict[str, SandboxEngine] = {}
        self._bills: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------------- config

    def channel_config(self, channel: str, base_url: str) -> ChannelConfig:
        return ChannelConfig(
            code=channel, provider="wechat", base_url=base_url,
            settings={"mchid": self.mchid, "appid": self.appid, "serial_no": self.keys.merchant_serial,
                      "platform_serial": self.keys.platform_serial,
                      # The sandbox may run in simulated time; signatures are still checked, freshness is not.
                      "max_clock_skew_seconds": None},
            credentials={"merchant_private_key": self.keys.merchant_private_key,
                         "platform_public_key": public_pem(self.keys.platform_private_key),
                         "api_v3_key": self.keys.api_v3_key(channel)},
        )

    # -------------------------------------------------------------------------------------- signing

    def _clock_now(self, channel: str, fallback: datetime | None = None) -> datetime:
        engine = self._engines.get(channel)
        if engine is not None:
            clock: Clock = engine.clock
            return clock.now()
        if fallback is None:
            raise RuntimeError("no engine for this channel yet")
        return fallback

    def _signed(self, channel: str, status: int, data: Mapping[str, Any] | None) -> Response:
        body = wire.dumps(data).encode() if data is not None else b""
        headers = signing.signed_headers(self._platform_key, serial=self.keys.platform_serial,
                                         timestamp=int(self._clock_now(channel).timestamp()),
                                         nonce=secrets.token_hex(16).upper(), body=body)
        return Response(content=body, status_code=status, headers=headers,
                        media_type="application/json" if body else None)

    def _authenticate(self, request: Request, engine: SandboxEngine, body: bytes) -> None:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        target = raw_path.decode() + ("?" + query.decode() if query else "")
        fresh = engine.realtime if self.check_request_freshness is None else self.check_request_freshness
        try:
            auth = signing.verify_request(self._merchant_key, header=request.headers.get("Authorization", ""),
                                          method=request.method, path=target, body=body.decode(),
                                          now=engine.clock.now(),
                                          max_skew=signing.MAX_SKEW if fresh else timedelta.max)
        except (InvalidSignature, UnicodeDecodeError) as error:
            raise _Reject(401, "SIGN_ERROR", f"签名错误: {error}") from error
        if auth.mchid != self.mchid or auth.serial_no != self.keys.merchant_serial:
            raise _Reject(401, "SIGN_ERROR", "商户号或证书序列号不匹配")

    # -------------------------------------------------------------------------------------- router

    def router(self, engine: SandboxEngine, channel: str) -> APIRouter:
        self._engines[channel] = engine
        router = APIRouter()

        def answer(request: Request, body: bytes, work: Callable[[], tuple[int, dict[str, Any] | None]]) -> Response:
            """Authenticate, run ``work``, and turn its result or failure into WeChat Pay's reply."""
            return _Handler(self, engine, channel, request).run(body, work)

        @router.post("/v3/pay/transactions/{kind}", include_in_schema=False)
        async def pay(kind: str, request: Request) -> Response:
            body = await request.body()
            return answer(request, body, lambda: self._pay(engine, channel, kind, _json(body)))

        @router.get("/v3/pay/transactions/out-trade-no/{out_trade_no}", include_in_schema=False)
        async def query(out_trade_no: str, request: Request) -> Response:
            def work() -> tuple[int, dict[str, Any] | None]:
                if request.query_params.get("mchid") != self.mchid:
                    raise _Reject(400, "PARAM_ERROR", "mchid 与请求签名不一致")
                tx = engine.query(channel, out_trade_no)
                if tx is None or _never_created(tx):
                    raise _Reject(404, "ORDER_NOT_EXIST", "订单不存在")
                return 200, self.transaction(tx)
            return answer(request, b"", work)

        @router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", include_in_schema=False)
        async def close(out_trade_no: str, request: Request) -> Response:
            body = await request.body()
            return answer(request, body, lambda: self._close(engine, channel, out_trade_no, _json(body)))

        @router.post("/v3/refund/domestic/refunds", include_in_schema=False)
        async def refund(request: Request) -> Response:
            body = await request.body()
            return answer(request, body, lambda: self._refund(engine, channel, _json(body)))

        @router.get("/v3/refund/domestic/refunds/{out_refund_no}", include_in_schema=False)
        async def query_refund(out_refund_no: str, request: Request) -> Response:
            def work() -> tuple[int, dict[str, Any] | None]:
                record = engine.query_refund(channel, out_refund_no)
                if record is None:
                    raise _Reject(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                return 200, self.refund_object(record, engine.find(channel, record.reference))
            return answer(request, b"", work)

        @router.get("/v3/bill/tradebill", include_in_schema=False)
        async def trade_bill(request: Request) -> Response:
            def work() -> tuple[int, dict[str, Any] | None]:
                try:
                    business_date = date.fromisoformat(request.query_params.get("bill_date", ""))
                except ValueError as error:
                    raise _Reject(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD") from error
                lines = engine.bill(channel, business_date, tz_offset=timedelta(hours=8))
                if not lines:
                    raise _Reject(400, "NO_STATEMENT_EXIST", "账单文件不存在")
                content = self.bill(lines, business_date, channel).content
                token = secrets.token_urlsafe(24)
                with self._lock:
                    self._bills[token] = content
                url = request.url.replace(path=request.url.path.replace(wire.TRADE_BILL_PATH, wire.BILL_DOWNLOAD_PATH),
                                          query=f"token={token}")
                return 200, {"download_url": str(url), "hash_type": "SHA1",
                             "hash_value": hashlib.sha1(content, usedforsecurity=False).hexdigest()}
            return answer(request, b"", work)

        @router.get("/v3/billdownload/file", include_in_schema=False)
        async def download(request: Request) -> Response:
            try:
                self._authenticate(request, engine, b"")
            except _Reject as reject:
                return Response(wire.dumps({"code": reject.code, "message": reject.message}),
                                status_code=reject.status, media_type="application/json")
            with self._lock:
                content = self._bills.get(request.query_params.get("token", ""))
            if content is None:
                return self._signed(channel, 404, {"code": "RESOURCE_NOT_EXISTS", "message": "账单链接已失效"})
            # WeChat Pay streams the file unsigned; the hash in the signed tradebill reply protects it.
            return Response(content=content, media_type="text/plain; charset=utf-8")

        return router

    # -------------------------------------------------------------------------------------- operations

    def _pay(self, engine: SandboxEngine, channel: str, kind: str,
             data: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        method = _KIND_METHODS.get(kind)
        if method is None:
            raise _Reject(404, "NOT_FOUND", "接口不存在")
        self._check_merchant(data)
        out_trade_no = _field(data, "out_trade_no", str)
        _field(data, "description", str)
        notify_url = _field(data, "notify_url", str)
        amount = _field(data, "amount", dict)
        total = amount.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise _Reject(400, "PARAM_ERROR", "amount.total 应为正整数(单位:分)")
        currency = amount.get("currency", wire.CURRENCY)
        if currency != wire.CURRENCY:
            raise _Reject(400, "PARAM_ERROR", "境内支付仅支持 CNY")
        if method == "mini_program" and not (data.get("payer") or {}).get("openid"):
            raise _Reject(400, "PARAM_ERROR", "JSAPI 下单需要 payer.openid")
        if method == "h5" and not (data.get("scene_info") or {}).get("payer_client_ip"):
            raise _Reject(400, "PARAM_ERROR", "H5 下单需要 scene_info.payer_client_ip")
        try:
            tx = engine.pay(channel, reference=out_trade_no, amount=total, currency=currency, method=method,
                            capture=True, notify_url=notify_url)
        except SandboxFailure as failure:
            if failure.code == "duplicate_reference":
                raise _Reject(400, "OUT_TRADE_NO_USED", "商户订单号重复") from failure
            raise
        if tx.status in (TxStatus.SUCCEEDED, TxStatus.REFUNDED):
            raise _Reject(403, "ORDERPAID", "该订单已支付")
        if tx.status in (TxStatus.CLOSED, TxStatus.FAILED):
            raise _Reject(400, "ORDER_CLOSED", "订单已关闭")
        prepay_id = f"wx{tx.channel_ref}"
        if kind == "native":
            return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={tx.channel_ref[-10:]}"}
        if kind == "h5":
            return 200, {"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
                                   f"?prepay_id={prepay_id}&package={tx.channel_ref[-10:]}"}
        return 200, {"prepay_id": prepay_id}

    def _close(self, engine: SandboxEngine, channel: str, out_trade_no: str,
               data: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if data.get("mchid") != self.mchid:
            raise _Reject(400, "PARAM_ERROR", "mchid 与请求签名不一致")
        tx = engine.query(channel, out_trade_no)
        if tx is None:
            raise _Reject(404, "ORDER_NOT_EXIST", "订单不存在")
        if tx.status in (TxStatus.SUCCEEDED, TxStatus.REFUNDED):
            raise _Reject(400, "ORDERPAID", "订单已支付, 不能关闭")
        engine.close(channel, out_trade_no)
        return 204, None

    def _refund(self, engine: SandboxEngine, channel: str, data: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        out_trade_no = _field(data, "out_trade_no", str)
        out_refund_no = _field(data, "out_refund_no", str)
        amount = _field(data, "amount", dict)
        refund, total = amount.get("refund"), amount.get("total")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund, total)):
            raise _Reject(400, "PARAM_ERROR", "amount.refund 与 amount.total 应为正整数(单位:分)")
        if amount.get("currency", wire.CURRENCY) != wire.CURRENCY:
            raise _Reject(400, "PARAM_ERROR", "退款币种仅支持 CNY")
        tx = engine.find(channel, out_trade_no)
        if tx is None or _never_created(tx):
            raise _Reject(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if tx.amount != total:
            raise _Reject(400, "PARAM_ERROR", "订单金额与原订单不一致")
        notify_url = data.get("notify_url")
        assert isinstance(refund, int)
        record = engine.refund(channel, reference=out_trade_no, refund_reference=out_refund_no, amount=refund,
                               notify_url=notify_url if isinstance(notify_url, str) else None)
        return 200, self.refund_object(record, engine.find(channel, out_trade_no))

    def _check_merchant(self, data: Mapping[str, Any]) -> None:
        if data.get("mchid") != self.mchid:
            raise _Reject(400, "PARAM_ERROR", "mchid 与请求签名不一致")
        if data.get("appid") != self.appid:
            raise _Reject(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")

    # -------------------------------------------------------------------------------------- wire objects

    def transaction(self, tx: Transaction) -> dict[str, Any]:
        """WeChat Pay's transaction object (query answer and TRANSACTION.* resource)."""
        state = _trade_state(tx)
        data: dict[str, Any] = {
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": tx.reference,
            "trade_type": _METHOD_TRADE_TYPES.get(tx.method, "NATIVE"), "trade_state": state,
            "trade_state_desc": _TRADE_STATE_DESC[state], "attach": "",
            "amount": {"total": tx.amount, "currency": tx.currency},
        }
        if state in ("SUCCESS", "REFUND", "PAYERROR"):
            data["transaction_id"] = tx.channel_ref
            data["bank_type"] = "OTHERS"
            data["payer"] = {"openid": _openid(tx.reference)}
        if state in ("SUCCESS", "REFUND") and tx.paid_at is not None:
            data["success_time"] = wire.rfc3339(tx.paid_at)
            data["amount"] = {"total": tx.amount, "payer_total": tx.captured, "currency": tx.currency,
                              "payer_currency": tx.currency}
        return data

    def refund_object(self, record: RefundRecord, tx: Transaction | None) -> dict[str, Any]:
        status = {"succeeded": "SUCCESS", "processing": "PROCESSING"}.get(record.status, "ABNORMAL")
        total = tx.amount if tx is not None else record.amount
        data: dict[str, Any] = {
            "refund_id": record.channel_refund_ref, "out_refund_no": record.refund_reference,
            "transaction_id": record.channel_ref, "out_trade_no": record.reference, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": wire.rfc3339(record.created_at),
            "status": status, "funds_account": "AVAILABLE",
            "amount": {"total": total, "refund": record.amount, "payer_total": total, "payer_refund": record.amount,
                       "settlement_total": total, "settlement_refund": record.amount, "discount_refund": 0,
                       "currency": record.currency or wire.CURRENCY, "refund_fee": record.fee_returned},
        }
        if record.succeeded_at is not None:
            data["success_time"] = wire.rfc3339(record.succeeded_at)
        return data

    # -------------------------------------------------------------------------------------- notifications

    def notification(self, item: PendingNotification) -> tuple[dict[str, str], bytes]:
        engine = self._engines.get(item.channel)
        if item.kind == "payment" and item.transaction is not None:
            resource = self.transaction(item.transaction)
            succeeded = resource["trade_state"] == "SUCCESS"
            # WeChat Pay only pushes TRANSACTION.SUCCESS; failed payments are a sandbox-only event.
            event_type, summary, original = (("TRANSACTION.SUCCESS", "支付成功", "transaction") if succeeded
                                             else ("TRANSACTION.PAYERROR", "支付失败", "transaction"))
        elif item.kind == "refund" and item.refund is not None:
            tx = engine.find(item.channel, item.refund.reference) if engine is not None else None
            refund = self.refund_object(item.refund, tx)
            resource = {key: refund[key] for key in ("out_trade_no", "transaction_id", "out_refund_no", "refund_id",
                                                     "user_received_account", "amount") if key in refund}
            resource["mchid"] = self.mchid
            resource["refund_status"] = refund["status"]
            if "success_time" in refund:
                resource["success_time"] = refund["success_time"]
            event_type, summary, original = {
                "SUCCESS": ("REFUND.SUCCESS", "退款成功", "refund"),
                "PROCESSING": ("REFUND.PROCESSING", "退款处理中", "refund"),
            }.get(refund["status"], ("REFUND.ABNORMAL", "退款异常", "refund"))
        elif item.kind == "dispute" and item.dispute is not None:
            resource = {key: item.dispute.get(key) for key in ("id", "reference", "channel_ref", "amount", "currency",
                                                              "reason", "evidence_due_by")}
            event_type, summary, original = SANDBOX_DISPUTE_EVENT, "争议(沙箱)", "dispute"
        else:
            raise ValueError(f"cannot format a {item.kind!r} notification")
        nonce = secrets.token_hex(6)
        envelope = {
            "id": item.id, "create_time": wire.rfc3339(item.due_at), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": summary,
            "resource": {"original_type": original, "algorithm": signing.ALGORITHM,
                         "ciphertext": signing.encrypt(self.keys.api_v3_key(item.channel), nonce=nonce,
                                                       associated_data=original,
                                                       plaintext=wire.dumps(resource).encode()),
                         "associated_data": original, "nonce": nonce},
        }
        body = wire.dumps(envelope).encode()
        now = self._clock_now(item.channel, fallback=item.due_at)
        headers = signing.signed_headers(self._platform_key, serial=self.keys.platform_serial,
                                         timestamp=int(now.timestamp()), nonce=secrets.token_hex(16).upper(),
                                         body=body)
        headers["Content-Type"] = "application/json"
        return headers, body

    # -------------------------------------------------------------------------------------- bill

    def bill(self, lines: Sequence[BillLine], business_date: date, channel: str) -> BillFile:
        engine = self._engines.get(channel)
        rows: list[wire.TradeBillRow] = []
        for line in lines:
            tx = engine.find(channel, line.reference) if engine is not None else None
            trade_type = _METHOD_TRADE_TYPES.get(tx.method, "NATIVE") if tx is not None else "NATIVE"
            fee_rate = f"{engine.profile(channel).fee_rate * 100:.2f}%" if engine is not None else ""
            row = wire.TradeBillRow(
                traded_at=line.at, appid=self.appid, mchid=self.mchid, transaction_id=line.channel_ref,
                out_trade_no=line.reference, openid=_openid(line.reference), trade_type=trade_type,
                trade_state="SUCCESS", currency=line.currency, settlement_amount=line.amount, refund_id="",
                out_refund_no="", refund_amount=0, refund_status="", description="sandbox order", fee=line.fee,
                fee_rate=fee_rate, order_amount=line.amount, requested_refund_amount=0)
            if line.kind == "refund":
                # A refund row: the payment's columns are zero, the fee given back is negative.
                row = replace(row, transaction_id=tx.channel_ref if tx is not None else "", trade_state="REFUND",
                              settlement_amount=0, refund_id=line.channel_ref,
                              out_refund_no=line.refund_reference or "", refund_amount=line.amount,
                              refund_type="ORIGINAL", refund_status="SUCCESS", fee=-line.fee, order_amount=0,
                              requested_refund_amount=line.amount)
            rows.append(row)
        return BillFile(channel=channel, business_date=business_date,
                        filename=wire.bill_filename(self.mchid, business_date), media_type="text/csv",
                        content=wire.format_trade_bill(rows))


class _Handler:
    """One request: authenticate, run, map ``SandboxFailure`` / ``_Reject`` to WeChat Pay's answers."""

    def __init__(self, provider: WechatSandbox, engine: SandboxEngine, channel: str, request: Request) -> None:
        self.provider = provider
        self.engine = engine
        self.channel = channel
        self.request = request

    def run(self, body: bytes, work: Callable[[], tuple[int, dict[str, Any] | None]]) -> Response:
        try:
            self.provider._authenticate(self.request, self.engine, body)
        except _Reject as reject:
            # WeChat Pay does not sign its answer to a request it could not authenticate.
            return Response(wire.dumps({"code": reject.code, "message": reject.message}),
                            status_code=reject.status, media_type="application/json")
        try:
            status, data = work()
        except _Reject as reject:
            return self.provider._signed(self.channel, reject.status, {"code": reject.code, "message": reject.message})
        except SandboxFailure as failure:
            return self._failure(failure)
        return self.provider._signed(self.channel, status, data)

    def _failure(self, failure: SandboxFailure) -> Response:
        if failure.kind == "unavailable":
            return Response(wire.dumps({"code": "SYSTEM_ERROR", "message": "系统繁忙, 请稍后重试"}), status_code=503,
                            media_type="application/json")
        if failure.kind == "timeout":
            return Response(b"", status_code=504)
        if failure.kind == "declined":
            return self.provider._signed(self.channel, 403, {"code": _DECLINES.get(failure.code, "TRADE_ERROR"),
                                                             "message": failure.message})
        if failure.kind == "error":
            status, code = _ERRORS.get(failure.code, (500, "SYSTEM_ERROR"))
            return self.provider._signed(self.channel, status, {"code": code, "message": failure.message})
        code = {"not_found": "ORDER_NOT_EXIST", "invalid_amount": "PARAM_ERROR",
                "refund_exceeds_captured": "INVALID_REQUEST", "duplicate_reference": "INVALID_REQUEST",
                "invalid_state": "INVALID_REQUEST"}.get(failure.code, "INVALID_REQUEST")
        return self.provider._signed(self.channel, 404 if code == "ORDER_NOT_EXIST" else 400,
                                     {"code": code, "message": failure.message})


_TRADE_STATE_DESC = {"SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "未支付", "CLOSED": "已关闭",
                     "PAYERROR": "支付失败", "USERPAYING": "用户支付中", "REVOKED": "已撤销"}


def _trade_state(tx: Transaction) -> str:
    if tx.status is TxStatus.SUCCEEDED:
        return "REFUND" if tx.refunded > 0 else "SUCCESS"
    if tx.status is TxStatus.REFUNDED:
        return "REFUND"
    if tx.status is TxStatus.CLOSED:
        return "CLOSED"
    if tx.status is TxStatus.FAILED:
        return "PAYERROR"
    return "NOTPAY"


def _never_created(tx: Transaction) -> bool:
    """A prepay refused with a system error never became an order at WeChat Pay."""
    return tx.status is TxStatus.FAILED and tx.paid_at is None and tx.error_code in _SYSTEM_ERROR_CODES


_SYSTEM_ERROR_CODES = frozenset({"system_error", "rate_limited", "issuer_unavailable"})


def _openid(reference: str) -> str:
    # A stable, fake payer identity per order; real openids are per user and per appid.
    return "o" + hashlib.sha256(reference.encode()).hexdigest()[:27]


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise _Reject(400, "PARAM_ERROR", "请求体不是合法的 JSON") from error
    if not isinstance(data, dict):
        raise _Reject(400, "PARAM_ERROR", "请求体应为 JSON 对象")
    return data


def _field(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or not value:
        raise _Reject(400, "PARAM_ERROR", f"缺少参数 {name}")
    return value


def make_sandbox() -> WechatSandbox:
    return WechatSandbox()


# ----------------------------------------------------------------------------- sandbox-only test keys
# Published on purpose so every sandbox (and a restarted one) speaks with the same keys. Never use them
# for a real WeChat Pay account.

SANDBOX_MERCHANT_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCbHqaj2AkWMcYS
wEGZZg9SyKelxgeipPsD357rqJBiAEkQn0V/MyQeqYFxQ8EN5i/yTBfAqhJkWnLq
DdA61ODov1vffgyGxCjEKTZ5dgn1wi+rAv1hnDvd8U3TlQMmgS/t9Zu8yHoEy+zr
EnnS5idJpsCH4MwxDtHg2r6H2ghr4PJD4jO4mctLGl/OJMAifDUMS42PmR39Ujnn
C+5Dsl6GXyBSTnQDgQ/p85HCQNsp0U75j3XHqJML6IA385A0rpwcjdby4+HDrNWv
Vqs5JEyfSupb0XebqqqW+u7+0+9Y6tw2aQZ7ARDpb9+iyfEJRfeKPNEaP6bB9l4B
rwDgpyWvAgMBAAECggEAF/ALdDZW9KNatzMPDH6Y98P6RxU/wWQnTmo4apJ5MX5s
yBFkFqSMOuUakiGMDbqLhJ8kfTlhnDXvDNpz21hVmuVI5rzbbwKfbeIUQ3spP1En
rQLJmkITZQUjZvbUZSFDhbvEvEXNuqbDmWUhAqA8yNtgU7enmxx32/S1uV42tXrk
KnAFkyYBtzKsftDGLHmndqHbUtb/XbGFAVApY29pwVfDNVwsqob6s/DXoTli0d/L
E0Rc7uf7YaXFhNcGd0vglm6nrzcFdbewar1T26Lug059BmTJfu9wSRq+N4mBQI/b
/qXzAdmkWTFygLIjg+WEheQacep8Xt6eL2ap99JFOQKBgQDPXnT/8GG/2VIP8iNj
L9lZmmE4FoZf4eajPRy3un7zOPvSLzT0d5iAExal6fomtfuAlgTD7ZkCK7hP8Kj4
IQMEoAhB+Zd5dwFp/tuJCJ4ngEqyYps6F+wiI+EMxAYXFdn+Wh+8vAxjB1yvN/zb
oH9v5PT3lurY6weTt7r7Fxjn+QKBgQC/f1+o39VnkJp9trAFX0haazzEC+dwpTm6
6nPIf8ogS1ZOTGzw3cqV942dYu0Vi6BSXiOai23V9qY+KOCGrcpmdeV55Hx4yOAR
UyjW6RWQH9/Fo5VxtCtLzJ5mdMb3DZ2D5iJkI7WOlo9HmZnIN6FMAt8FcVXvlcc2
X6Znjtl05wKBgQCfyIaal1yaeRe0Vb1SthHh6wSyNRkBVI1khrhUEY20V9oh0GIb
ZPPK6+ptmWY44cyS/gVZ+wAFHi782dE4sCclLzJts6Y1367lP41lf5Btm3rzDOvS
zZATllXYgkq3Cw1X4ZXG1ZctzwRptthNWtQXIfJnvI/k6OSDu/SFePyl8QKBgQCs
VFLgpTXlskLlON8kpn91JyYTAudu/rF6HPy/BQj/kOyFH8+13tItrQ5bASh8CB/p
n+AIdssMDp/CNoT/jiwjkptE2zKMe7DwxlZtOGp4Pcbhk/mrzkhcOTKe3x4iO7Vx
ekuetGfxflpIQ9kZTb6wqbDLtBdyuOYCb4dPkETvJwKBgC/ZoFocNA6/g2RKxNxW
ievyE8bYF5laxoQGB3c9F4afcoMuzKPG+Y9xax2q7mLZ2Hrwl4Lj6R6df0+j7G4l
8pwn/3qFjv2pAFk3JPL/zlJgWkmvkZADyndVcKEa6yDYC5cdivsFDtkeDuBQeTES
Pu0wLiSKhzYcWFNvEhlTdxzw
-----END PRIVATE KEY-----
"""

SANDBOX_PLATFORM_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCJCF3GxL7kxYPI
pvEmk1ga3/W0IeKry0Uvi3ThgY/PeGAyFGeuI+VT11b8iyfFivjeMYFp1Y6NT/Wo
h0V368g++hjT/yaSNmTk7BGNMMf+THvk4d2tXQjhI6RPNUQgB99obnpCHwkXNohN
8mIS/PXyRx280tFDdPILZb3EE4rf/urnDMpiF5jfiV7uZ+wxZYveCRddlLMydP8T
FNalkHuCShWDl6O5rF1ZQIz1DCUZN8q8+m6MqBNnaHwrIgcxzcubnaOe33FlRctI
GezaHNbgheeWAKU2J4NT4Q5Sw6dqGv4KUjNmLWIOKtGJEXpnUmgipyuOKi+aD8Dj
LOI/AQStAgMBAAECggEAAn9jCizq18ubz8vvKEdWO0MqvMpDUeNGEwxFKJkOcHce
tbr2es+PrfwGS1sT8f9K8u3PEIlCbGPxM82nX/ytrSwsyKxlXRPduehtl3e0pXdq
aK0PN8oyz7uxEnqDj9vk4AfndY4QQdqOGHGbBQKUTwKp0Ze8FbEreja0Az9h8Bw0
Apg4Rn9vmP/JZTzfJLcS0AU0isZGfIavR7qB1ArKUX0LcsgkkIsP+/fSFUEAnwog
kYPgJ10oUrvDZ5H1W7ffiTv4sibCvIh8yoF9jJaJWlh5m52fRcYhrxL4IgG6/iRG
3iU8C2st8ooXfeODJqP/P9F6fUVW5k7A+zVQ44BktwKBgQC/UgmqmTSVQCu7hMVB
bOi/KS9naewu8nP8I0I+XQorl7CxiJNg9+JJ6BTQ2s7/1B3p2qJ4JJvmEcdHZxjI
+fp/+uhodES7B8ZQmJnufXG+OqR19nPE6Z4fuO7gH1y+r5YE0oiLO8I8Q3E05u5m
qXI486+r0yT6HNvdlGa3Y+XImwKBgQC3W/R4rdZ0y4oho6hfM+KX9vZ/158+v0VQ
AHpI3mm7HyLHyBjeM/4KpgqcsHSuGfhsDTf+SOe0DiMNQp5sCzK38PevFbfGsoiE
pxTS8j4FtM/8sdMyFSgZTQJskl+D66WnlJCARSjz6qZRF13l89n+JQ842IaDCjCB
DVgYdr8IVwKBgB2CzQTonujKvjQtlbOy1e/urWY5O3o+Yc+prKUr+s6gllu8ImeZ
tOkLiHJy3e0uTfLti5QWqYmCgoesCnGtxYsKK+E41gU3fMqfz1avOOVL7GRZwJ/G
HWLtRsOBcu/i67QQuYkojZx4FrU/TdS+HGVWiWlqp1CBNRTnuDRfj2kzAoGAK/nL
6l2W/7AJUwQTT7H7+IJsoECwmrX5A7T5nxxos05GYy/kdvZ1SUyFYwsXEOJ9qDyL
X1tQ5ug1E+sUX8lXwrHyVXWZ+/e5skb4QZeDtI6nC24CvxI/6cGEgVGhwtvzgPuq
pHjx135BoVU/WfVgJQnyWqnjqO36sBjpNgTU0EUCgYEApPw+JhG91+dMs9cInQEt
StisVKOWHIb53MvONFxg+k7RaHzuLqqtWdh2u4QA/DsAf0fUHdnXp44D2eXGbLm8
TVJ8ouBxFFpmcTaMExPAaEYaxIk4zOhrXuVnvxie/JtxL1UiHDPEnHfBq2sipHW2
/luSCZPClJSoC8RzyRoHmJ0=
-----END PRIVATE KEY-----
"""
