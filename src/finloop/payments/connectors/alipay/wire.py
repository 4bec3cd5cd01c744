"""Alipay's wire vocabulary: method names, amounts, times, trade statuses and error codes.

Invariants owned here:
- amounts cross the wire as yuan strings ("88.88"); conversion uses the currency's ISO 4217 exponent
  with integer/Decimal arithmetic only, and an amount with more digits than the exponent allows is
  refused, never rounded;
- times on the wire are "yyyy-MM-dd HH:mm:ss" in Asia/Shanghai; inside finloop they are aware UTC;
- every trade_status and sub_code maps to exactly one ``Outcome`` here, nowhere else;
- buyer identifiers never reach ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from finloop.core.money import currency as iso_currency
from finloop.payments.connectors.base import Outcome, PaymentMethod

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

PRECREATE = "alipay.trade.precreate"
WAP_PAY = "alipay.trade.wap.pay"
APP_PAY = "alipay.trade.app.pay"
CREATE = "alipay.trade.create"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
BILL_URL = "alipay.data.dataservice.bill.downloadurl.query"

#: The method that opens a trade for each way of paying, and its product code.
PAY_METHODS: dict[PaymentMethod, tuple[str, str]] = {
    PaymentMethod.QR: (PRECREATE, "FACE_TO_FACE_PAYMENT"),
    PaymentMethod.H5: (WAP_PAY, "QUICK_WAP_WAY"),
    PaymentMethod.APP: (APP_PAY, "QUICK_MSECURITY_PAY"),
    PaymentMethod.MINI_PROGRAM: (CREATE, "JSAPI_PAY"),
}
#: Methods that are not API calls: the signed parameters go to the customer, who opens them at Alipay.
CLIENT_SIDE_METHODS = frozenset({WAP_PAY, APP_PAY})

SUCCESS_CODE = "10000"
WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"
TRADE_CLOSED = "TRADE_CLOSED"

#: The customer's reasons: the payment is refused, do not fail over to another channel.
DECLINE_SUB_CODES = frozenset({
    "ACQ.BUYER_BALANCE_NOT_ENOUGH",
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH",
    "ACQ.BUYER_ENABLE_STATUS_FORBID",
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
    "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR",
    "ACQ.BUYER_SELLER_EQUAL",
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE",
    "ACQ.PAYMENT_FAIL",
    "ACQ.PAYMENT_AUTH_CODE_INVALID",
    "ACQ.PAYMENT_REQUEST_HAS_RISK",
})
#: The outcome is not known: Alipay may or may not have acted. Query before anything else.
UNKNOWN_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"})
#: Refused by the channel but another channel may succeed.
RETRYABLE_SUB_CODES = frozenset({"ACQ.REQUEST_TOO_FAST", "aop.invalid-app-call-limit", "isp.rpc-fail"})
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"
TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"

#: Fields that name the buyer: kept out of ``raw``.
PERSONAL_FIELDS = frozenset({"buyer_logon_id", "buyer_user_id", "buyer_id", "buyer_open_id", "buyer_user_name",
                             "buyer_email", "buyer_user_type"})


def to_yuan(amount: int, currency: str) -> str:
    """Minor units to Alipay's decimal string: 8888 CNY -> "88.88"; 100 JPY -> "100"."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amounts are int minor units")
    exponent = iso_currency(currency).exponent
    value = Decimal(amount).scaleb(-exponent)
    return f"{value:.{exponent}f}"


def from_yuan(text: str, currency: str) -> int:
    """Alipay's decimal string to minor units, exactly; more decimals than the currency has is an error."""
    exponent = iso_currency(currency).exponent
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as error:
        raise ValueError(f"not an amount: {text!r}") from error
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than {exponent} decimals")
    return int(scaled)


def format_time(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI).astimezone(ZoneInfo("UTC"))


def trade_outcome(trade_status: str | None, *, paid: bool) -> Outcome:
    """Map a trade_status. ``paid``: the trade carries a payment time (a TRADE_CLOSED trade that was paid
    was fully refunded — it is a succeeded payment with refunds, not a cancellation)."""
    if trade_status in (TRADE_SUCCESS, TRADE_FINISHED):
        return Outcome.SUCCEEDED
    if trade_status == WAIT_BUYER_PAY:
        return Outcome.REQUIRES_ACTION
    if trade_status == TRADE_CLOSED:
        return Outcome.SUCCEEDED if paid else Outcome.CANCELED
    return Outcome.UNKNOWN


def classify_error(code: str | None, sub_code: str | None) -> tuple[Outcome, bool]:
    """(outcome, retryable) for a reply whose code is not 10000."""
    if code == "20000" or (sub_code or "") in UNKNOWN_SUB_CODES:
        return Outcome.UNKNOWN, True
    if sub_code in DECLINE_SUB_CODES:
        return Outcome.DECLINED, False
    if sub_code in RETRYABLE_SUB_CODES or code == "20001":
        return Outcome.FAILED, True
    return Outcome.FAILED, False


def redact(reply: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in reply.items() if key not in PERSONAL_FIELDS}


# --------------------------------------------------------------------------------------- the trade bill

BILL_TYPE = "trade"
BILL_ENCODING = "gbk"
BILL_MEDIA_TYPE = "text/csv; charset=GBK"
#: The columns of Alipay's merchant trade bill (业务明细), in order.
BILL_COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称",
    "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）",
    "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
    "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
)
BILL_KIND_PAYMENT = "交易"
BILL_KIND_REFUND = "退款"
