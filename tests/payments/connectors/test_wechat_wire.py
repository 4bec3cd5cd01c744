"""WeChat Pay wire mapping: amounts, statuses, errors, request bodies and the trade bill layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.payments.connectors.base import Outcome, PaymentMethod, PayRequest, RefundRequest
from finloop.payments.connectors.wechat import wire
from tests.payments.connectors.test_wechat_support import FIXTURES

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ amounts and time


@pytest.mark.parametrize(("fen", "places", "text"), [
    (0, 2, "0.00"), (1, 2, "0.01"), (1234, 2, "12.34"), (100000, 2, "1000.00"), (-3, 5, "-0.03000"), (7, 5, "0.07000"),
])
def test_fen_to_yuan(fen: int, places: int, text: str) -> None:
    assert wire.fen_to_yuan(fen, places) == text


@given(st.integers(min_value=-10**15, max_value=10**15), st.sampled_from([2, 5]))
def test_yuan_text_round_trips_exactly(fen: int, places: int) -> None:
    assert wire.yuan_to_fen(wire.fen_to_yuan(fen, places)) == fen


def test_sub_fen_fee_rounds_half_up() -> None:
    assert wire.yuan_to_fen("0.00500") == 1
    assert wire.yuan_to_fen("0.00499") == 0


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity"])
def test_yuan_to_fen_refuses_non_amounts(bad: str) -> None:
    with pytest.raises(ValueError):
        wire.yuan_to_fen(bad)


def test_fen_to_yuan_refuses_floats() -> None:
    with pytest.raises(TypeError):
        wire.fen_to_yuan(12.34)  # type: ignore[arg-type]


def test_rfc3339_is_beijing_time_to_the_second() -> None:
    assert wire.rfc3339(datetime(2026, 3, 2, 9, 0, 0, 999, tzinfo=UTC)) == "2026-03-02T17:00:00+08:00"
    assert wire.parse_time("2026-03-02T17:00:00+08:00") == AT


# ------------------------------------------------------------------------------------------ statuses and errors


@pytest.mark.parametrize(("state", "outcome"), [
    ("SUCCESS", Outcome.SUCCEEDED), ("REFUND", Outcome.SUCCEEDED), ("NOTPAY", Outcome.REQUIRES_ACTION),
    ("USERPAYING", Outcome.PROCESSING), ("CLOSED", Outcome.CANCELED), ("REVOKED", Outcome.CANCELED),
    ("PAYERROR", Outcome.DECLINED), ("SOMETHING_NEW", Outcome.UNKNOWN), (None, Outcome.UNKNOWN),
])
def test_trade_state_mapping(state: str | None, outcome: Outcome) -> None:
    assert wire.trade_outcome(state) is outcome


@pytest.mark.parametrize(("operation", "status", "code", "outcome", "retryable"), [
    ("pay", 403, "NOTENOUGH", Outcome.DECLINED, False),
    ("pay", 403, "TRADE_ERROR", Outcome.DECLINED, False),
    ("pay", 400, "ORDERPAID", Outcome.UNKNOWN, False),
    ("pay", 400, "ORDER_CLOSED", Outcome.FAILED, False),
    ("pay", 400, "PARAM_ERROR", Outcome.FAILED, False),
    ("pay", 400, "OUT_TRADE_NO_USED", Outcome.FAILED, False),
    ("pay", 429, "FREQUENCY_LIMITED", Outcome.FAILED, True),
    ("pay", 403, "BANKERROR", Outcome.FAILED, True),
    ("pay", 400, "SYSTEM_ERROR", Outcome.FAILED, True),
    ("query", 404, "ORDER_NOT_EXIST", Outcome.NOT_FOUND, False),
    ("query", 429, "FREQUENCY_LIMITED", Outcome.UNKNOWN, True),
    ("close", 400, "ORDERPAID", Outcome.FAILED, False),
    ("close", 404, "ORDER_NOT_EXIST", Outcome.NOT_FOUND, False),
    ("refund", 400, "SYSTEM_ERROR", Outcome.UNKNOWN, True),
    ("refund", 403, "NOT_ENOUGH", Outcome.FAILED, True),
    ("refund", 400, "INVALID_REQUEST", Outcome.FAILED, False),
    ("refund", 404, "RESOURCE_NOT_EXISTS", Outcome.NOT_FOUND, False),
    ("query_refund", 404, "RESOURCE_NOT_EXISTS", Outcome.NOT_FOUND, False),
])
def test_error_classification(operation: str, status: int, code: str, outcome: Outcome, retryable: bool) -> None:
    mapping = wire.classify_error(operation, status, code)
    assert (mapping.outcome, mapping.retryable) == (outcome, retryable)


def test_query_result_of_a_paid_order() -> None:
    result = wire.query_result("att_1", {
        "out_trade_no": "att_1", "transaction_id": "42", "trade_state": "SUCCESS", "success_time":
        "2026-03-02T17:00:00+08:00", "payer": {"openid": "o-secret"}, "amount": {"total": 1234, "currency": "CNY"}})
    assert (result.outcome, result.channel_ref, result.amount, result.captured_amount, result.currency) == (
        Outcome.SUCCEEDED, "42", 1234, 1234, "CNY")
    assert result.paid_at == AT
    assert "payer" not in result.raw


def test_query_result_of_an_unpaid_order_has_no_capture() -> None:
    result = wire.query_result("att_1", {"out_trade_no": "att_1", "trade_state": "NOTPAY",
                                         "trade_state_desc": "未支付", "amount": {"total": 5, "currency": "CNY"}})
    assert (result.outcome, result.captured_amount, result.paid_at, result.error_code) == (
        Outcome.REQUIRES_ACTION, 0, None, None)


@pytest.mark.parametrize(("status", "outcome"), [("SUCCESS", Outcome.SUCCEEDED), ("PROCESSING", Outcome.PROCESSING),
                                                 ("ABNORMAL", Outcome.FAILED), ("CLOSED", Outcome.FAILED)])
def test_refund_status_mapping(status: str, outcome: Outcome) -> None:
    result = wire.refund_result("re_1", {"out_refund_no": "re_1", "refund_id": "503", "status": status,
                                         "user_received_account": "招商银行信用卡0403",
                                         "amount": {"refund": 300, "total": 1000, "refund_fee": 2}})
    assert (result.outcome, result.amount, result.fee_returned) == (outcome, 300, 2)
    assert "user_received_account" not in result.raw


def test_redact_drops_nested_payer_identity() -> None:
    assert wire.redact({"a": 1, "payer": {"openid": "x"}, "detail": {"openid": "y", "b": 2}}) == {
        "a": 1, "detail": {"b": 2}}


# ------------------------------------------------------------------------------------------ request bodies


def _pay(method: PaymentMethod, **extra: object) -> PayRequest:
    values: dict[str, object] = {"reference": "att_1", "amount": 1234, "currency": "CNY", "method": method,
                                 "description": "Tea"}
    values.update(extra)
    return PayRequest(**values)  # type: ignore[arg-type]


def test_native_body_has_amount_in_fen_and_no_scene() -> None:
    body = wire.pay_body(_pay(PaymentMethod.QR), appid="wx1", mchid="19", notify_url="https://n", openid=None)
    assert body == {"appid": "wx1", "mchid": "19", "description": "Tea", "out_trade_no": "att_1",
                    "notify_url": "https://n", "amount": {"total": 1234, "currency": "CNY"}}


def test_h5_body_carries_scene_info_and_jsapi_the_payer() -> None:
    h5 = wire.pay_body(_pay(PaymentMethod.H5, client_ip="1.2.3.4"), appid="wx1", mchid="19", notify_url="n",
                       openid=None)
    assert h5["scene_info"] == {"payer_client_ip": "1.2.3.4", "h5_info": {"type": "Wap"}}
    jsapi = wire.pay_body(_pay(PaymentMethod.MINI_PROGRAM), appid="wx1", mchid="19", notify_url="n", openid="o1")
    assert jsapi["payer"] == {"openid": "o1"}


def test_body_carries_expiry_in_beijing_time_and_cuts_long_descriptions() -> None:
    body = wire.pay_body(_pay(PaymentMethod.QR, expires_at=AT, description="茶" * 100), appid="wx1", mchid="19",
                         notify_url="n", openid=None)
    assert body["time_expire"] == "2026-03-02T17:00:00+08:00"
    assert len(body["description"].encode()) <= 127
    assert body["description"] == "茶" * 42


def test_refund_body_sends_refund_and_original_total() -> None:
    request = RefundRequest(refund_reference="re_1", reference="att_1", channel_ref="42", amount=300,
                            payment_amount=1234, currency="CNY", reason="damaged")
    assert wire.refund_body(request) == {"out_trade_no": "att_1", "out_refund_no": "re_1", "reason": "damaged",
                                         "amount": {"refund": 300, "total": 1234, "currency": "CNY"}}


# ------------------------------------------------------------------------------------------ trade bill


def test_recorded_trade_bill_parses_with_refund_row_and_summary() -> None:
    bill = wire.parse_trade_bill((FIXTURES / "tradebill_all.csv").read_bytes())
    assert [(r.out_trade_no, r.trade_state, r.settlement_amount, r.refund_amount, r.fee) for r in bill.rows] == [
        ("att_golden_0001", "SUCCESS", 1234, 0, 7),
        ("att_golden_0002", "SUCCESS", 100000, 0, 600),
        ("att_golden_0001", "REFUND", 0, 500, -3),
    ]
    assert bill.rows[0].description == "Oolong tea, 250 g"      # a comma inside a field survives
    assert bill.rows[1].attach == '{"k":"v"}'
    assert bill.rows[2].out_refund_no == "re_golden_0001"
    assert bill.rows[0].traded_at == datetime(2026, 3, 2, 9, 0, 25, tzinfo=UTC)
    assert bill.summary == wire.TradeBillSummary(count=3, settlement_total=101234, refund_total=500,
                                                 coupon_refund_total=0, fee_total=604, order_total=101234,
                                                 requested_refund_total=500)


def test_recorded_trade_bill_round_trips_byte_for_byte() -> None:
    content = (FIXTURES / "tradebill_all.csv").read_bytes()
    assert wire.format_trade_bill(wire.parse_trade_bill(content).rows) == content


def test_bill_whose_summary_disagrees_is_refused() -> None:
    content = (FIXTURES / "tradebill_all.csv").read_bytes().replace(b"`1012.34,`5.00,",
                                                                      b"`1012.35,`5.00,")
    with pytest.raises(ValueError, match="summary"):
        wire.parse_trade_bill(content)


def test_non_bill_is_refused() -> None:
    with pytest.raises(ValueError):
        wire.parse_trade_bill(b"hello,world\r\n")


def test_empty_bill_has_header_and_zero_summary() -> None:
    content = wire.format_trade_bill([])
    assert content.decode().splitlines() == [wire.BILL_HEADER, wire.SUMMARY_HEADER,
                                             "`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00"]
    assert wire.parse_trade_bill(content).rows == []


_field_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(lambda s: s.replace(",`", ""))


@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(0, 10**6), st.booleans(), _field_text), max_size=6))
def test_formatted_bill_parses_back_to_the_same_rows(specs: list[tuple[int, int, bool, str]]) -> None:
    rows = []
    for index, (amount, fee, is_refund, description) in enumerate(specs):
        rows.append(wire.TradeBillRow(
            traded_at=datetime(2026, 3, 2, 1, 2, index, tzinfo=wire.CHINA), appid="wx1", mchid="19",
            transaction_id=f"42{index}", out_trade_no=f"att_{index}", openid="o1", trade_type="NATIVE",
            trade_state="REFUND" if is_refund else "SUCCESS", currency="CNY",
            settlement_amount=0 if is_refund else amount, refund_id=f"50{index}" if is_refund else "",
            out_refund_no=f"re_{index}" if is_refund else "", refund_amount=amount if is_refund else 0,
            refund_status="SUCCESS" if is_refund else "", description=description.strip(),
            fee=-fee if is_refund else fee, fee_rate="0.60%", order_amount=0 if is_refund else amount,
            requested_refund_amount=amount if is_refund else 0))
    assert wire.parse_trade_bill(wire.format_trade_bill(rows)).rows == rows
