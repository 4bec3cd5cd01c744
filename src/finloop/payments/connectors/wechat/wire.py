"""WeChat Pay API v3 wire format: request bodies, reply mapping, status and error mapping, the trade bill.

Pure: no HTTP, no clock, no randomness (callers pass them in).

Invariants owned here:
- amounts on the API wire are integers of fen (``amount.total``, ``amount.refund``), which are CNY minor
  units one to one; the only major-unit text (yuan, "12.34", fees "0.07000") is in the trade bill, and the
  conversions ``fen_to_yuan`` / ``yuan_to_fen`` are exact (Decimal, no float) both ways;
- ``trade_state`` maps to ``Outcome`` by one table (``TRADE_STATES``), refund ``status`` by another;
  a state we do not know maps to ``UNKNOWN`` so the caller queries instead of guessing;
- an error ``code`` maps to an outcome per operation: customer-side refusals are ``DECLINED``, WeChat
  Pay's own transient failures ``FAILED`` + retryable, request or configuration faults ``FAILED``
  non-retryable; a refusal that may hide a completed operation (``ORDERPAID`` on pay, ``SYSTEM_ERROR``
  on refund) is ``UNKNOWN`` so the caller queries;
- ``redact`` drops the payer's identity (openid, receiving account) from anything we keep as ``raw``;
- bill fields are written with WeChat's backtick prefix and parsed back to the same values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from finloop.core.money import Rounding, round_minor
from finloop.payments.connectors.base import (
    Outcome,
    PaymentMethod,
    PayRequest,
    QueryResult,
    RefundRequest,
    RefundResult,
)

#: Beijing time: every timestamp WeChat Pay writes (RFC 3339 "+08:00", bill times) is in it.
CHINA = timezone(timedelta(hours=8), "CST")
#: WeChat Pay domestic APIs settle in CNY only.
CURRENCY = "CNY"

#: PaymentMethod -> (path segment under /v3/pay/transactions/, the trade_type WeChat Pay reports).
METHOD_PATHS: dict[PaymentMethod, tuple[str, str]] = {
    PaymentMethod.QR: ("native", "NATIVE"),
    PaymentMethod.H5: ("h5", "MWEB"),
    PaymentMethod.APP: ("app", "APP"),
    PaymentMethod.MINI_PROGRAM: ("jsapi", "JSAPI"),
}

PAY_PATH = "/v3/pay/transactions/{kind}"
QUERY_PATH = "/v3/pay/transactions/out-trade-no/{out_trade_no}"
CLOSE_PATH = "/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
REFUND_PATH = "/v3/refund/domestic/refunds"
REFUND_QUERY_PATH = "/v3/refund/domestic/refunds/{out_refund_no}"
TRADE_BILL_PATH = "/v3/bill/tradebill"
BILL_DOWNLOAD_PATH = "/v3/billdownload/file"

TRADE_STATES: dict[str, Outcome] = {
    "SUCCESS": Outcome.SUCCEEDED,
    "REFUND": Outcome.SUCCEEDED,        # paid, then (partly) refunded: the payment itself succeeded
    "NOTPAY": Outcome.REQUIRES_ACTION,  # the order waits for the customer to scan / confirm
    "USERPAYING": Outcome.PROCESSING,   # the customer is entering a password
    "CLOSED": Outcome.CANCELED,
    "REVOKED": Outcome.CANCELED,
    "PAYERROR": Outcome.DECLINED,       # the customer's bank refused
}

REFUND_STATES: dict[str, Outcome] = {
    "SUCCESS": Outcome.SUCCEEDED,
    "PROCESSING": Outcome.PROCESSING,
    "CLOSED": Outcome.FAILED,
    "ABNORMAL": Outcome.FAILED,         # the receiving account refused; needs manual handling
}

#: Refusals for the customer's reasons (do not fail over).
DECLINE_CODES = frozenset({"NOTENOUGH", "NOT_ENOUGH", "TRADE_ERROR", "ACCOUNTERROR", "ACCOUNT_ERROR", "PAYERROR"})
#: WeChat Pay's own transient trouble: the same request may work later or elsewhere.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR", "BANK_ERROR"})
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS", "NOT_FOUND"})

_PERSONAL_KEYS = frozenset({"payer", "user_received_account", "openid", "sub_openid"})


# ------------------------------------------------------------------------------------------ values


def fen_to_yuan(fen: int, places: int = 2) -> str:
    """Fen as yuan text with ``places`` decimals (2 for amounts, 5 for bill fees): exact, no float."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("fen must be an int")
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}{'0' * (places - 2)}"


def yuan_to_fen(text: str, rounding: Rounding = Rounding.HALF_UP) -> int:
    """Yuan text (bill amounts "12.34", fees "0.07000") as fen; sub-fen fees round by ``rounding``."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as error:
        raise ValueError(f"not an amount: {text!r}") from error
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    return round_minor(value * 100, rounding)


def rfc3339(moment: datetime) -> str:
    """WeChat Pay's timestamps: seconds, Beijing offset ("2026-03-02T17:00:00+08:00")."""
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA)


def dumps(data: Mapping[str, Any]) -> str:
    """The exact JSON text we send and sign (compact, UTF-8 kept readable as WeChat Pay's own samples)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without the payer's identity, for ``raw``."""
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key in _PERSONAL_KEYS:
            continue
        clean[key] = redact(value) if isinstance(value, Mapping) else value
    return clean


# ------------------------------------------------------------------------------------------ requests


def pay_body(request: PayRequest, *, appid: str, mchid: str, notify_url: str, openid: str | None) -> dict[str, Any]:
    """The body of POST /v3/pay/transactions/{native,h5,app,jsapi}."""
    body: dict[str, Any] = {
        "appid": appid,
        "mchid": mchid,
        # WeChat Pay caps description at 127 bytes; cut on characters so UTF-8 stays valid.
        "description": _cut_bytes(request.description or request.reference, 127),
        "out_trade_no": request.reference,
        "notify_url": notify_url,
        "amount": {"total": request.amount, "currency": request.currency},
    }
    if request.expires_at is not None:
        body["time_expire"] = rfc3339(request.expires_at)
    extra = {key: value for key, value in request.metadata.items() if key != "openid"}
    if extra:
        # attach comes back verbatim in query answers and notifications (max 128 bytes).
        attach = dumps(extra)
        if len(attach.encode()) <= 128:
            body["attach"] = attach
    if request.method is PaymentMethod.H5:
        body["scene_info"] = {"payer_client_ip": request.client_ip or "127.0.0.1", "h5_info": {"type": "Wap"}}
    elif request.client_ip:
        body["scene_info"] = {"payer_client_ip": request.client_ip}
    if request.method is PaymentMethod.MINI_PROGRAM:
        body["payer"] = {"openid": openid}
    return body


def refund_body(request: RefundRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "out_trade_no": request.reference,
        "out_refund_no": request.refund_reference,
        "amount": {"refund": request.amount, "total": request.payment_amount, "currency": request.currency},
    }
    if request.reason:
        body["reason"] = _cut_bytes(request.reason, 80)
    if request.notify_url:
        body["notify_url"] = request.notify_url
    return body


def _cut_bytes(text: str, limit: int) -> str:
    while len(text.encode()) > limit:
        text = text[:-1]
    return text


# ------------------------------------------------------------------------------------------ replies


def trade_outcome(trade_state: str | None) -> Outcome:
    return TRADE_STATES.get(trade_state or "", Outcome.UNKNOWN)


def query_result(reference: str, data: Mapping[str, Any]) -> QueryResult:
    """A transaction object (query answer or decrypted TRANSACTION.* resource) in finloop's vocabulary."""
    state = str(data.get("trade_state", ""))
    outcome = trade_outcome(state)
    amount = data.get("amount") if isinstance(data.get("amount"), Mapping) else {}
    total = _int_or_none(amount.get("total")) if amount else None
    paid = outcome is Outcome.SUCCEEDED
    return QueryResult(
        outcome=outcome,
        reference=str(data.get("out_trade_no") or reference),
        channel_ref=data.get("transaction_id") or None,
        amount=total,
        captured_amount=total if paid else (0 if total is not None else None),
        currency=(amount.get("currency") if amount else None) or None,
        paid_at=parse_time(data.get("success_time")) if paid else None,
        error_code=None if paid or outcome is Outcome.REQUIRES_ACTION else state or None,
        error_message=None if paid else data.get("trade_state_desc") or None,
        raw=redact(data),
    )


def refund_result(refund_reference: str, data: Mapping[str, Any]) -> RefundResult:
    """A refund object (refund answer, refund query or decrypted REFUND.* resource)."""
    # The refund API says ``status``; the refund notification says ``refund_status``.
    status = str(data.get("status") or data.get("refund_status") or "")
    outcome = REFUND_STATES.get(status, Outcome.UNKNOWN)
    amount = data.get("amount") if isinstance(data.get("amount"), Mapping) else {}
    return RefundResult(
        outcome=outcome,
        refund_reference=str(data.get("out_refund_no") or refund_reference),
        channel_refund_ref=data.get("refund_id") or None,
        amount=_int_or_none(amount.get("refund")) if amount else None,
        fee_returned=_int_or_none(amount.get("refund_fee")) if amount else None,
        error_code=status if outcome is Outcome.FAILED else None,
        error_message=None,
        retryable=False,
        raw=redact(data),
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    outcome: Outcome
    retryable: bool


def classify_error(operation: str, status: int, code: str) -> ErrorMapping:
    """What a verified 4xx ``{code, message}`` means for ``operation`` ("pay", "query", "close", "refund",
    "query_refund"). 5xx never reaches here: it is ``UNKNOWN`` whatever it says."""
    if code in NOT_FOUND_CODES or (status == 404 and operation in ("query", "close", "query_refund")):
        return ErrorMapping(Outcome.NOT_FOUND, False)
    if operation in ("query", "query_refund"):
        # The question failed, not the payment: ask again later.
        return ErrorMapping(Outcome.UNKNOWN, code in RETRYABLE_CODES or status == 429)
    if operation == "pay":
        if code == "ORDERPAID":
            return ErrorMapping(Outcome.UNKNOWN, False)   # already paid under this reference: query it
        if code in DECLINE_CODES:
            return ErrorMapping(Outcome.DECLINED, False)
    if operation == "refund":
        if code in ("SYSTEM_ERROR", "SYSTEMERROR"):
            return ErrorMapping(Outcome.UNKNOWN, True)    # may have been accepted: query the refund
        if code in ("NOTENOUGH", "NOT_ENOUGH"):
            return ErrorMapping(Outcome.FAILED, True)     # the merchant's balance, not the customer's
    if code in RETRYABLE_CODES or status == 429:
        return ErrorMapping(Outcome.FAILED, True)
    return ErrorMapping(Outcome.FAILED, False)


# ------------------------------------------------------------------------------------------ trade bill

BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
               "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
               "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
_BILL_COLUMNS = len(BILL_HEADER.split(","))
_BILL_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class TradeBillRow:
    """One line of an ALL trade bill. Amounts are fen; ``fee`` is negative on refund rows (fee returned)."""

    traded_at: datetime
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str              # SUCCESS or REFUND
    currency: str
    settlement_amount: int        # 应结订单金额: the payment on SUCCESS rows, 0 on REFUND rows
    refund_id: str
    out_refund_no: str
    refund_amount: int
    refund_status: str
    description: str
    fee: int
    fee_rate: str                 # "0.60%"
    order_amount: int
    requested_refund_amount: int
    bank: str = "OTHERS"
    attach: str = ""
    sub_mchid: str = "0"
    device: str = ""
    coupon_amount: int = 0
    coupon_refund_amount: int = 0
    refund_type: str = ""
    fee_remark: str = ""

    def fields(self) -> list[str]:
        return [
            self.traded_at.astimezone(CHINA).strftime(_BILL_TIME), self.appid, self.mchid, self.sub_mchid,
            self.device, self.transaction_id, self.out_trade_no, self.openid, self.trade_type, self.trade_state,
            self.bank, self.currency, fen_to_yuan(self.settlement_amount), fen_to_yuan(self.coupon_amount),
            self.refund_id or "0", self.out_refund_no or "0", fen_to_yuan(self.refund_amount),
            fen_to_yuan(self.coupon_refund_amount), self.refund_type, self.refund_status, self.description,
            self.attach, fen_to_yuan(self.fee, 5), self.fee_rate, fen_to_yuan(self.order_amount),
            fen_to_yuan(self.requested_refund_amount), self.fee_remark,
        ]


@dataclass(frozen=True, slots=True)
class TradeBillSummary:
    count: int
    settlement_total: int
    refund_total: int
    coupon_refund_total: int
    fee_total: int
    order_total: int
    requested_refund_total: int


@dataclass(frozen=True, slots=True)
class TradeBill:
    rows: list[TradeBillRow]
    summary: TradeBillSummary


def summarize(rows: Sequence[TradeBillRow]) -> TradeBillSummary:
    return TradeBillSummary(
        count=len(rows),
        settlement_total=sum(r.settlement_amount for r in rows),
        refund_total=sum(r.refund_amount for r in rows),
        coupon_refund_total=sum(r.coupon_refund_amount for r in rows),
        fee_total=sum(r.fee for r in rows),
        order_total=sum(r.order_amount for r in rows),
        requested_refund_total=sum(r.requested_refund_amount for r in rows),
    )


def _clean(value: str) -> str:
    # A comma-backtick or a line break inside a field would split it; WeChat Pay never emits them either.
    return value.replace("\r", " ").replace("\n", " ").replace(",`", ", ")


def format_trade_bill(rows: Iterable[TradeBillRow]) -> bytes:
    """WeChat Pay's trade bill text: header, one backtick-prefixed line per row, summary header and line."""
    rows = list(rows)
    summary = summarize(rows)
    lines = [BILL_HEADER]
    lines.extend(",".join(f"`{_clean(value)}" for value in row.fields()) for row in rows)
    lines.append(SUMMARY_HEADER)
    totals = [str(summary.count), fen_to_yuan(summary.settlement_total), fen_to_yuan(summary.refund_total),
              fen_to_yuan(summary.coupon_refund_total), fen_to_yuan(summary.fee_total, 5),
              fen_to_yuan(summary.order_total), fen_to_yuan(summary.requested_refund_total)]
    lines.append(",".join(f"`{value}" for value in totals))
    return ("\r\n".join(lines) + "\r\n").encode()


def _split(line: str) -> list[str]:
    if not line.startswith("`"):
        raise ValueError("a bill data line starts with a backtick")
    # Split on ",`" rather than ",": descriptions and attach may hold commas.
    return line[1:].split(",`")


def parse_trade_bill(content: bytes) -> TradeBill:
    """Parse an ALL trade bill back into rows and its summary; the summary must agree with the rows."""
    text = content.decode("utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or lines[0] != BILL_HEADER or lines[-2] != SUMMARY_HEADER:
        raise ValueError("not a WeChat Pay ALL trade bill")
    rows: list[TradeBillRow] = []
    for number, line in enumerate(lines[1:-2], start=2):
        values = _split(line)
        if len(values) != _BILL_COLUMNS:
            raise ValueError(f"bill line {number} has {len(values)} fields, expected {_BILL_COLUMNS}")
        rows.append(TradeBillRow(
            traded_at=datetime.strptime(values[0], _BILL_TIME).replace(tzinfo=CHINA),
            appid=values[1], mchid=values[2], sub_mchid=values[3], device=values[4], transaction_id=values[5],
            out_trade_no=values[6], openid=values[7], trade_type=values[8], trade_state=values[9], bank=values[10],
            currency=values[11], settlement_amount=yuan_to_fen(values[12]), coupon_amount=yuan_to_fen(values[13]),
            refund_id="" if values[14] == "0" else values[14], out_refund_no="" if values[15] == "0" else values[15],
            refund_amount=yuan_to_fen(values[16]), coupon_refund_amount=yuan_to_fen(values[17]),
            refund_type=values[18], refund_status=values[19], description=values[20], attach=values[21],
            fee=yuan_to_fen(values[22]), fee_rate=values[23], order_amount=yuan_to_fen(values[24]),
            requested_refund_amount=yuan_to_fen(values[25]), fee_remark=values[26],
        ))
    totals = _split(lines[-1])
    if len(totals) != 7:
        raise ValueError("the bill summary line has the wrong number of fields")
    summary = TradeBillSummary(count=int(totals[0]), settlement_total=yuan_to_fen(totals[1]),
                               refund_total=yuan_to_fen(totals[2]), coupon_refund_total=yuan_to_fen(totals[3]),
                               fee_total=yuan_to_fen(totals[4]), order_total=yuan_to_fen(totals[5]),
                               requested_refund_total=yuan_to_fen(totals[6]))
    if summary != summarize(rows):
        raise ValueError("the bill summary does not match its rows")
    return TradeBill(rows=rows, summary=summary)


def bill_filename(mchid: str, business_date: date) -> str:
    return f"wechatpay_tradebill_{mchid}_{business_date:%Y%m%d}.csv"
