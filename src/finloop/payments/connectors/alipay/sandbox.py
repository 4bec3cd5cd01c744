"""The Alipay sandbox: ``gateway.do`` speaking Alipay's signed wire over the shared ``SandboxEngine``.

Invariants owned here:
- every request must carry a valid RSA2 sign by the channel's app key, or it is refused (``isv.invalid-signature``)
  before the engine sees it; every reply and notification is signed with the sandbox's Alipay key;
- the router only translates: all state and every decision (success, decline, outage, fee) is the engine's;
- an engine timeout answers 504 and an outage 503, so a client sees what a lost reply looks like;
- the keys below are SANDBOX-ONLY test keys, published on purpose; never use them for a real account.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from finloop.payments.connectors.alipay import wire
from finloop.payments.connectors.alipay.signing import (
    REQUEST_EXCLUDED,
    load_private_key,
    public_pem,
    rsa2_sign,
    sign_content,
    signed_response,
    verify_params,
)
from finloop.payments.connectors.base import BillFile, ChannelConfig, InvalidSignature
from finloop.payments.connectors.sandbox.engine import (
    BillLine,
    PendingNotification,
    SandboxEngine,
    SandboxFailure,
    Transaction,
    TxStatus,
)

SANDBOX_APP_ID = "9021000100000001"
SANDBOX_SELLER_ID = "2088100000000001"
SANDBOX_BUYER_ID = "2088102000000002"
BILL_TZ = timedelta(hours=8)

#: engine method names for Alipay's pay methods
_ENGINE_METHOD = {wire.PRECREATE: "qr", wire.WAP_PAY: "h5", wire.APP_PAY: "app", wire.CREATE: "mini_program"}
#: engine decline codes -> Alipay sub_codes
_DECLINES = {"insufficient_funds": "ACQ.BUYER_BALANCE_NOT_ENOUGH", "risk_rejected": "ACQ.PAYMENT_REQUEST_HAS_RISK"}
#: engine "invalid" codes -> Alipay sub_codes
_INVALID = {
    "not_found": wire.TRADE_NOT_EXIST,
    "duplicate_reference": "ACQ.CONTEXT_INCONSISTENT",
    "invalid_state": "ACQ.TRADE_STATUS_ERROR",
    "refund_exceeds_captured": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "invalid_amount": "ACQ.INVALID_PARAMETER",
}
_MESSAGES = {"10000": "Success", "20000": "Service Currently Unavailable", "40002": "Invalid Arguments",
             "40004": "Business Failed"}


class _Refusal(Exception):
    """A business failure to answer with a signed code/sub_code."""

    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(sub_msg)
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg


def _refusal(failure: SandboxFailure) -> _Refusal:
    if failure.kind == "declined":
        return _Refusal("40004", _DECLINES.get(failure.code, "ACQ.PAYMENT_FAIL"), failure.message)
    if failure.kind == "error":
        if failure.code == "rate_limited":
            return _Refusal("40004", "ACQ.REQUEST_TOO_FAST", failure.message)
        return _Refusal("20000", "ACQ.SYSTEM_ERROR", failure.message)
    return _Refusal("40004", _INVALID.get(failure.code, "ACQ.INVALID_PARAMETER"), failure.message)


def trade_status(tx: Transaction) -> str:
    if tx.status is TxStatus.WAITING:
        return wire.WAIT_BUYER_PAY
    if tx.status is TxStatus.SUCCEEDED:
        return wire.TRADE_SUCCESS
    return wire.TRADE_CLOSED  # closed, failed, or paid and fully refunded (then it carries a payment time)


class AlipaySandbox:
    """The ``SandboxProvider`` for Alipay."""

    name = "alipay"

    def __init__(self, *, app_private_key: str | None = None, alipay_private_key: str | None = None,
                 app_id: str = SANDBOX_APP_ID) -> None:
        self.app_private_key_pem = app_private_key or SANDBOX_APP_PRIVATE_KEY
        self.alipay_private_key_pem = alipay_private_key or SANDBOX_ALIPAY_PRIVATE_KEY
        self.app_id = app_id
        self._alipay_key = load_private_key(self.alipay_private_key_pem)
        self._app_public = load_private_key(self.app_private_key_pem).public_key()
        self._bill_secret = hashlib.sha256(self.alipay_private_key_pem.encode()).digest()
        self._engines: dict[str, SandboxEngine] = {}

    # -------------------------------------------------------------------------------- configuration

    def channel_config(self, channel: str, base_url: str) -> ChannelConfig:
        return ChannelConfig(
            code=channel, provider="alipay", base_url=base_url,
            settings={"app_id": self.app_id},
            credentials={"app_private_key": self.app_private_key_pem,
                         "alipay_public_key": public_pem(self._alipay_key)})

    # -------------------------------------------------------------------------------- notifications

    def notification(self, item: PendingNotification) -> tuple[dict[str, str], bytes]:
        tx = item.transaction
        engine = self._engines.get(item.channel)
        if tx is None and item.refund is not None and engine is not None:
            tx = engine.find(item.channel, reference=item.refund.reference)
        if tx is None and item.refund is not None:
            raise LookupError(f"refund {item.refund.refund_reference} has no transaction to notify about")
        assert tx is not None
        params: dict[str, str] = {
            "notify_time": wire.format_time(item.due_at),
            "notify_type": "trade_status_sync",
            "notify_id": item.id,
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": tx.channel_ref,
            "out_trade_no": tx.reference,
            "seller_id": SANDBOX_SELLER_ID,
            "buyer_id": SANDBOX_BUYER_ID,
            "trade_status": trade_status(tx),
            "total_amount": wire.to_yuan(tx.amount, tx.currency),
            "gmt_create": wire.format_time(tx.created_at),
        }
        if tx.paid_at is not None:
            params["gmt_payment"] = wire.format_time(tx.paid_at)
            params["receipt_amount"] = wire.to_yuan(tx.captured, tx.currency)
            params["buyer_pay_amount"] = wire.to_yuan(tx.captured, tx.currency)
        if tx.closed_at is not None:
            params["gmt_close"] = wire.format_time(tx.closed_at)
        refund = item.refund
        if refund is not None and refund.status == "succeeded" and refund.succeeded_at is not None:
            # Alipay's refund_fee is the trade's cumulative refunded total.
            params["out_biz_no"] = refund.refund_reference
            params["refund_fee"] = wire.to_yuan(max(tx.refunded, refund.amount), tx.currency)
            params["gmt_refund"] = wire.format_time(refund.succeeded_at)
        params["sign"] = rsa2_sign(sign_content(params, ("sign", "sign_type")), self._alipay_key)
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
        return headers, urlencode(params).encode("ascii")

    # -------------------------------------------------------------------------------- bill

    def bill(self, lines: Sequence[BillLine], business_date: date, channel: str) -> BillFile:
        engine = self._engines.get(channel)
        out = io.StringIO()
        start = datetime(business_date.year, business_date.month, business_date.day)
        end = start + timedelta(days=1)
        out.write("#支付宝业务明细查询\n")
        out.write(f"#账号：[{SANDBOX_SELLER_ID}0156]\n")
        out.write(f"#起始日期：[{start:%Y年%m月%d日 %H:%M:%S}]   终止日期：[{end:%Y年%m月%d日 %H:%M:%S}]\n")
        out.write("#-----------------------------------------业务明细列表----------------------------------------\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(wire.BILL_COLUMNS)
        paid_count = refund_count = 0
        paid_total = refund_total = 0
        for line in lines:
            tx = engine.find(channel, reference=line.reference) if engine is not None else None
            trade_no = tx.channel_ref if tx is not None else line.channel_ref
            created = tx.created_at if tx is not None else line.at
            if line.kind == "payment":
                paid_count += 1
                paid_total += line.amount
                kind, amount, fee, request_no = wire.BILL_KIND_PAYMENT, line.amount, -line.fee, ""
            else:
                refund_count += 1
                refund_total += line.amount
                kind, amount, fee = wire.BILL_KIND_REFUND, -line.amount, line.fee
                request_no = line.refund_reference or ""
            # Alipay pads the number columns with a tab so spreadsheets keep them as text.
            gross = wire.to_yuan(amount, line.currency)
            writer.writerow([
                f"{trade_no}\t", f"{line.reference}\t", kind, "sandbox order", wire.format_time(created),
                wire.format_time(line.at), "", "", "", "", "sandbox buyer", gross, gross, "0.00", "0.00", "0.00",
                "0.00", "0.00", "", "0.00", "0.00", request_no, wire.to_yuan(fee, line.currency), "0.00", "",
            ])
        out.write("#-----------------------------------------业务明细列表结束------------------------------------\n")
        out.write(f"#交易合计：{paid_count}笔，商家实收共：{wire.to_yuan(paid_total, 'CNY')}元，商家优惠共：0.00元\n")
        out.write(f"#退款合计：{refund_count}笔，商家实收退款共：{wire.to_yuan(-refund_total, 'CNY')}元，"
                  "商家优惠退款共：0.00元\n")
        out.write(f"#导出时间：[{end:%Y年%m月%d日} 09:00:00]\n")
        filename = f"{SANDBOX_SELLER_ID}0156_{business_date:%Y%m%d}_trade_detail.csv"
        return BillFile(channel=channel, business_date=business_date, filename=filename,
                        media_type=wire.BILL_MEDIA_TYPE, content=out.getvalue().encode(wire.BILL_ENCODING))

    def _bill_token(self, channel: str, day: str) -> str:
        return hmac.new(self._bill_secret, f"{channel}:{day}".encode(), hashlib.sha256).hexdigest()[:32]

    # -------------------------------------------------------------------------------- the gateway

    def router(self, engine: SandboxEngine, channel: str) -> APIRouter:
        self._engines[channel] = engine
        api = APIRouter()

        @api.api_route("/gateway.do", methods=["GET", "POST"])
        async def gateway(request: Request) -> Response:
            params: dict[str, str] = dict(request.query_params)
            if request.method == "POST":
                params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            method = params.get("method", "")
            if not method:
                return _json(_error_body("40001", "isv.missing-method", "method is required"))
            try:
                if params.get("app_id") != self.app_id:
                    raise _Refusal("40002", "isv.invalid-app-id", "unknown app_id")
                try:
                    verify_params(params, self._app_public, REQUEST_EXCLUDED)
                except InvalidSignature as error:
                    raise _Refusal("40002", "isv.invalid-signature", "sign check failed") from error
                try:
                    biz = json.loads(params.get("biz_content") or "{}")
                except ValueError as error:
                    raise _Refusal("40002", "isv.invalid-parameter", "biz_content is not JSON") from error
                if not isinstance(biz, dict):
                    raise _Refusal("40002", "isv.invalid-parameter", "biz_content is not an object")
                body = self._dispatch(engine, channel, request, method, biz, params)
            except _Refusal as refusal:
                body = {"code": refusal.code, "msg": _MESSAGES.get(refusal.code, "Business Failed"),
                        "sub_code": refusal.sub_code, "sub_msg": refusal.sub_msg}
            except SandboxFailure as failure:
                if failure.kind == "timeout":
                    return Response(status_code=504)
                if failure.kind == "unavailable":
                    return Response(status_code=503)
                mapped = _refusal(failure)
                body = {"code": mapped.code, "msg": _MESSAGES.get(mapped.code, "Business Failed"),
                        "sub_code": mapped.sub_code, "sub_msg": mapped.sub_msg}
            if method == wire.WAP_PAY and body.get("code") == wire.SUCCESS_CODE:
                return _cashier_page(body, _cashier_url(request, body))
            return Response(signed_response(method, body, self._alipay_key),
                            media_type="application/json;charset=utf-8")

        @api.get("/cashier/{trade_no}")
        def cashier(trade_no: str, request: Request) -> Response:
            tx = engine.find(channel, channel_ref=trade_no)
            if tx is None:
                return PlainTextResponse("no such trade", status_code=404)
            return _cashier_page({"out_trade_no": tx.reference, "trade_no": tx.channel_ref,
                                  "total_amount": wire.to_yuan(tx.amount, tx.currency)}, str(request.url))

        @api.post("/cashier/{trade_no}")
        def cashier_act(trade_no: str, pays: bool = True) -> Response:
            """The simulated customer pays (or abandons) a waiting trade now."""
            tx = engine.find(channel, channel_ref=trade_no)
            if tx is None:
                return PlainTextResponse("no such trade", status_code=404)
            try:
                tx = engine.customer_acts(channel, tx.reference, pays=pays)
            except SandboxFailure as failure:
                return PlainTextResponse(failure.message, status_code=409)
            return PlainTextResponse(trade_status(tx))

        @api.get("/downloadBillFile.resource")
        def download(bizDates: str, token: str, bizType: str = "trade") -> Response:
            if not hmac.compare_digest(token, self._bill_token(channel, bizDates)):
                return PlainTextResponse("invalid token", status_code=403)
            day = datetime.strptime(bizDates, "%Y%m%d").date()
            bill = self.bill(engine.bill(channel, day, BILL_TZ), day, channel)
            return Response(bill.content, media_type=bill.media_type,
                            headers={"content-disposition": f'attachment; filename="{bill.filename}"'})

        return api

    def _dispatch(self, engine: SandboxEngine, channel: str, request: Request, method: str,
                  biz: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        if method in _ENGINE_METHOD:
            return self._pay(engine, channel, request, method, biz, params)
        if method == wire.QUERY:
            tx = engine.query(channel, _need(biz, "out_trade_no"))
            if tx is None:
                raise _Refusal("40004", wire.TRADE_NOT_EXIST, "trade does not exist")
            return self._trade_body(tx)
        if method == wire.CLOSE:
            tx = engine.close(channel, _need(biz, "out_trade_no"))
            return _ok({"trade_no": tx.channel_ref, "out_trade_no": tx.reference})
        if method == wire.REFUND:
            return self._refund(engine, channel, biz, params)
        if method == wire.REFUND_QUERY:
            return self._refund_query(engine, channel, biz)
        if method == wire.BILL_URL:
            return self._bill_url(engine, channel, request, biz)
        raise _Refusal("40002", "isv.invalid-method", f"unknown method {method}")

    def _pay(self, engine: SandboxEngine, channel: str, request: Request, method: str, biz: Mapping[str, Any],
             params: Mapping[str, str]) -> dict[str, Any]:
        reference = _need(biz, "out_trade_no")
        amount = _yuan(_need(biz, "total_amount"))
        if method == wire.CREATE and not (biz.get("buyer_id") or biz.get("buyer_open_id")):
            raise _Refusal("40004", "ACQ.INVALID_PARAMETER", "buyer_id is required")
        existing = engine.find(channel, reference=reference)
        if existing is not None and existing.amount == amount:
            if existing.status in (TxStatus.SUCCEEDED, TxStatus.REFUNDED):
                raise _Refusal("40004", wire.TRADE_HAS_SUCCESS, "trade has been paid")
            if existing.status is TxStatus.CLOSED:
                raise _Refusal("40004", wire.TRADE_HAS_CLOSE, "trade has been closed")
        tx = engine.pay(channel, reference=reference, amount=amount, currency="CNY", method=_ENGINE_METHOD[method],
                        capture=True, notify_url=params.get("notify_url") or None)
        body = {"out_trade_no": tx.reference, "total_amount": wire.to_yuan(tx.amount, tx.currency)}
        if method == wire.PRECREATE:
            body["qr_code"] = _cashier_url(request, {"trade_no": tx.channel_ref})
        else:
            body["trade_no"] = tx.channel_ref
            body["seller_id"] = SANDBOX_SELLER_ID
        return _ok(body)

    def _trade_body(self, tx: Transaction) -> dict[str, Any]:
        body: dict[str, Any] = {
            "trade_no": tx.channel_ref, "out_trade_no": tx.reference, "trade_status": trade_status(tx),
            "total_amount": wire.to_yuan(tx.amount, tx.currency), "buyer_logon_id": "159****5620",
            "buyer_user_id": SANDBOX_BUYER_ID,
        }
        if tx.paid_at is not None:
            body["send_pay_date"] = wire.format_time(tx.paid_at)
            body["receipt_amount"] = wire.to_yuan(tx.captured, tx.currency)
            body["buyer_pay_amount"] = wire.to_yuan(tx.captured, tx.currency)
        return _ok(body)

    def _refund(self, engine: SandboxEngine, channel: str, biz: Mapping[str, Any],
                params: Mapping[str, str]) -> dict[str, Any]:
        reference = _need(biz, "out_trade_no")
        request_no = str(biz.get("out_request_no") or reference)  # Alipay's default: the trade number
        amount = _yuan(_need(biz, "refund_amount"))
        repeated = any(r.refund_reference == request_no for r in engine.refunds(channel))
        record = engine.refund(channel, reference=reference, refund_reference=request_no, amount=amount,
                               notify_url=params.get("notify_url") or None)
        tx = engine.find(channel, reference=reference)
        assert tx is not None
        body: dict[str, Any] = {
            "trade_no": tx.channel_ref, "out_trade_no": tx.reference, "buyer_logon_id": "159****5620",
            "fund_change": "Y" if record.status == "succeeded" and not repeated else "N",
            "refund_fee": wire.to_yuan(tx.refunded, tx.currency),
        }
        if record.succeeded_at is not None:
            body["gmt_refund_pay"] = wire.format_time(record.succeeded_at)
        return _ok(body)

    def _refund_query(self, engine: SandboxEngine, channel: str, biz: Mapping[str, Any]) -> dict[str, Any]:
        reference = _need(biz, "out_trade_no")
        request_no = str(biz.get("out_request_no") or reference)
        tx = engine.find(channel, reference=reference)
        if tx is None:
            raise _Refusal("40004", wire.TRADE_NOT_EXIST, "trade does not exist")
        record = engine.query_refund(channel, request_no)
        if record is None or record.reference != reference or record.status == "failed":
            # Alipay's answer for "no such refund" (and for one that failed): success without refund data.
            return _ok({"trade_no": tx.channel_ref, "out_trade_no": tx.reference})
        body: dict[str, Any] = {
            "trade_no": tx.channel_ref, "out_trade_no": tx.reference, "out_request_no": request_no,
            "total_amount": wire.to_yuan(tx.amount, tx.currency),
            "refund_amount": wire.to_yuan(record.amount, record.currency or tx.currency),
            # REFUND_PROCESSING is a sandbox extension for asynchronous refunds.
            "refund_status": "REFUND_SUCCESS" if record.status == "succeeded" else "REFUND_PROCESSING",
        }
        if record.succeeded_at is not None:
            body["gmt_refund_pay"] = wire.format_time(record.succeeded_at)
        return _ok(body)

    def _bill_url(self, engine: SandboxEngine, channel: str, request: Request,
                  biz: Mapping[str, Any]) -> dict[str, Any]:
        if biz.get("bill_type") != wire.BILL_TYPE:
            raise _Refusal("40004", "isp.bill_type_not_support", "only trade bills are served")
        try:
            day = date.fromisoformat(_need(biz, "bill_date"))
        except ValueError as error:
            raise _Refusal("40004", "isv.invalid-bill-date", "bill_date is yyyy-MM-dd") from error
        today = (engine.clock.now() + BILL_TZ).date()
        if day >= today:
            raise _Refusal("40004", "isp.bill_not_exist", "the bill is ready after the day ends")
        tag = f"{day:%Y%m%d}"
        query = urlencode({"bizType": "trade", "bizDates": tag, "token": self._bill_token(channel, tag)})
        url = str(request.url).split("?", 1)[0].rsplit("/", 1)[0] + f"/downloadBillFile.resource?{query}"
        return _ok({"bill_download_url": url})


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    return {"code": wire.SUCCESS_CODE, "msg": "Success", **body}


def _error_body(code: str, sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": code, "msg": _MESSAGES.get(code, "Invalid Arguments"), "sub_code": sub_code, "sub_msg": sub_msg}


def _json(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps({"error_response": body}), media_type="application/json;charset=utf-8")


def _need(biz: Mapping[str, Any], key: str) -> str:
    value = biz.get(key)
    if value in (None, ""):
        raise _Refusal("40002", "isv.missing-parameter", f"{key} is required")
    return str(value)


def _yuan(text: str) -> int:
    try:
        amount = wire.from_yuan(text, "CNY")
    except ValueError as error:
        raise _Refusal("40002", "isv.invalid-parameter", "amounts are yuan with at most 2 decimals") from error
    if amount <= 0:
        raise _Refusal("40002", "isv.invalid-parameter", "amounts are positive")
    return amount


def _cashier_url(request: Request, body: Mapping[str, Any]) -> str:
    return str(request.url).split("?", 1)[0].rsplit("/", 1)[0] + f"/cashier/{body['trade_no']}"


def _cashier_page(body: Mapping[str, Any], pay_url: str) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Alipay sandbox cashier</title>"
        f"<h1>Pay ¥{escape(str(body.get('total_amount', '')))}</h1>"
        f"<p>order {escape(str(body.get('out_trade_no', '')))}</p>"
        f'<form method="post" action="{escape(pay_url)}"><button>Pay</button></form>')


def make_sandbox() -> AlipaySandbox:
    return AlipaySandbox()


# ----------------------------------------------------------------------------- sandbox-only test keys

SANDBOX_APP_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQD1Cv6O1G10Utfv
fIawohvbKvJo5kkYezG8c9MbExssyUUxibvAwMb3LJwZS/3irqNegEcGALha+Nca
jDQ9nQF8lNb2hOB+urGXaKokWpG8s9laf4ag68SOdY4Ifg3370JTjtn1JxdXEiUZ
xRj6QAbRk01tIX1Fb9v1lS8GjuOkpAvZTC3kOFe0fdndUpQoiwk1uLPVeVN/xP6c
Z63g3rO+v6kwU4FXvhFzmkSeesTKUnguevKBC3OjWJjaW5gEIYIeYR1YE7/Dl7B7
puqxO5oRsju6D/pX3ssc7QGFBq3GPySepoWPNlCZ3noxIvlE7bMeaB8QDTMI8/Q7
Z2LBaxH5AgMBAAECggEATAdjQBGs/ECP+yBZ8gf6OKA0olOBLnVa0yvkvivJbLXu
IBaqCH5HvX072aV4WpLw4WtPng8vJBq9MuF5e/xw76SGpepIdUmbvGyfDbSEL1Zm
A+w5a0h7re/PZ9ckol67540VFzlPxpY8qKg8vbiL5Q6dIVUYtyijyKjG9HP1MamR
Dme5nw2u+h2ax2P8xCMsN4IFig2u1U5l/CwJKLbGuWXUtzMnh/FWsgKfc5nZerYi
iA5tv0HzM9Qcj2gcPR47UlA4tMWj11tgieEWvkQyJCbSn/NvXoCWmiyEs56howR+
ANSdjrjplNHIhfGaQJFA0bTtZm2q5u2ucpYRBqyR2QKBgQD8QGLn3bMWae3innST
B5c/BrRCl9TIxuv5GGcmyRNkQEJtBYkqZei8Idl2G5vPnRRZp1ddCfs0A3x1TyL/
pOzMnp7hxm8ufhO/E6U6npJAYkHxBcA+DCo5U6ECl68XWYKgrun2IbRJcuJdlu7o
Rd2rMOJ72UwXV6TYkhCVd4LhzwKBgQD4ry9sXTJ25qSNJtyKwiCHf/D3JPoD35Vf
hnG3zkvIjhF9kg2cLKq4tgbJjEv/HZX65X/raBxUMuq2f1pj+6pXkplHKgZbX/a2
ZRcodtbE3r0hP8esjy/cDmaGI6moLkOw90haGx1bQVSgPoXymkAH4/twQjkFeg7O
taU3PBaptwKBgEwUR0BTV04tSLgOvm4R3gX+SaPEE0My67zHJWVHQ/f6gY5MGyCU
d+s18lZy4T1uzNJ1bB39gqwfWQwwgAfGgDz+okDKDoJhOCdrD2xsowOUHvtIlsCf
/qQnmuojQYWzU3iPCLVZWPzGD4vWl9uqJr8ZEVX1JcPshSVkeGf8EZd1AoGBAI43
aVB4b86tkfci/UbhQ8cZtM0xuUUTzRHHCiuKb65vCLOeHehtZuihOHp0oFVyLv4/
1wriDClewPnDFQdOuhjAvqWC9AW3eJjQcRDz/Viy5Mgp+F/HtyAKoDkgFfsXEiEX
GapmDUDNuL63YtTdv7aDe5y0UnW+Ws9989EFrRQ7AoGBAMX2O0SmHH9qTn5cp7Ru
4bPArSiY7lk/1dplbfWak4zXPrdm88vbWvZoTkIg9Rn1xDN5twUshUA9PJVR1G0E
HKJux7/3jPIpmW1M5w1aVrxS5EvEJlRjuYlilbnJ9JxTFEdMwHeLYLS9rM6pib5s
VtbAYpJVlHbwKqLFMgf5t6L8
-----END PRIVATE KEY-----
"""

SANDBOX_ALIPAY_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCw1PVy8OfBub3J
tvzISxTNrTX+0ak9slBD4wGJ9+SqPE0sKAAhvmXB36EMl5jfFXiMOabt32R3Sa3b
+M4aPZvAaLJWehsE/z7uDN5Tho+y+f5bZLOCdqRvov41fmhQBENSicJvnX5UfVS4
9EIIM7bJyi/kKNiGdNSU/RrbUL0lIcsN1JwRpFhfB19c7xGBybf/dUvjHeHHghib
bbjnqoz+M9aWgW9KWLFQEWhyZ5zBaXYYkQQY3GoMsj/Nl8rP6q/GlvTxWmvddk8P
1s8HlJsF/zIZoMjRwoGMOhGZYLPMsYCr2f6ZEWXfYhvgbmXghfo4BNweGV3B7hbf
bxDenIhFAgMBAAECggEAC+mcy2x9QGjB51fjeZ7NPPnhPFRlgVmE3L3rOZ8wkWNU
k5fyQlOwSTpGgDGqQ8UPhOrRWw8ElqCpDLubLttdpb2n3fmF3nVPiPvm8luLTLRY
tVF4Yl6Zv0eMto/YeSOAYYwURC6o9wombftOg3zwYHG1fjpeM9ilBZBzgbjTtS+P
ukY1RrSJW4xe3le4rzwbev25rDNWm0ZFlt6L2Mivox1SWOExRBzPtjIn1JQDbuv2
4ZOBIgSS+IYSEUHQZkG/8dwdm8W9ZVb2b4vG1b10U9AhNRU5Rjf8TQ/eoB1WHTyV
cVl6mnCy16TwKYr3AhLl5MFAkqr7uJjj9Fx4IvYQNQKBgQDwzur6VPjiFKgKfKd/
P+ZW20vt32f2t+tIAgthptqK1sYHi+9mifL22Ts3prOfHzs6Q1u5seS5WQ5y1fHe
BOUhg247AtvNP8Lv6St1uzPAid4vnvlw+UOXgQmEoYEuE+pqIb2xVVDq1Kvin3LS
rFLPBW4iRVceEl0mpyUKIFFSKwKBgQC7/NB+I8bE2qcXfM10g5inhz6b40v+C04r
KYZdjeaKMkY8nqFzE6h6cwR13sn3USdYVGcsgpXBdBY6Iezq4B6JAifFehmo0Q3I
MFciPc66wIYTKo12JU9HdBK0+m046uS8jU3hiOjSOujMCrPCOg/M4KYSoASeOWrA
t12nc08HTwKBgD6puZ/WyMUcFvZTpcqJOElV25ZU0lrzVThxv8BziN8kMHf6RBvs
vdragHxk1s0LdYAd0xqpXhmVQRtE7SGXKIDmEKMuhUAN3Y5MoNCMHFV4CuddeQ+a
7anZHD71QAZbjF591Tz2NI5HNUtNrrV/vjS89wHYBWl/4dmTGSJfcontAoGAW2nk
BQLmvIFLMau5yQfZKtYkhu+v23ip6WlG8qV3TwqFhyLohaowimL170+ITODEzjo0
9bsGkc0epeQrbkfP8XX/2xK1+Za3Kfr/1CHULpJCYH2XzrTz6V4zXphMlpn64wmf
rqXB+cE1xUsLAM71Mf6oI3R26m4nUFGalDwJWRcCgYBjE2ZercqDArKK63m7I5zq
Bx5mL0UE+N+7xFRElIt0tXl7kpfLbvnHbGMBANUZ2nM04rnsKzoE8dw5OzzAzFN/
sr+ANnX5BWgLSFJi/NZ8xQ9qhf8yr0PedzTgyrjz62LZ6OIIqQgOL4wa6V64Uf9N
upshg9PchPoO6BcE9SUfDg==
-----END PRIVATE KEY-----
"""
