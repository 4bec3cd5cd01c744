"""The parsers: sandbox bills parsed back, bank statements, mapped CSV, malformed files (pure, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.payments.connectors.alipay.sandbox import make_sandbox as alipay_sandbox
from finloop.payments.connectors.generic.sandbox import make_sandbox as generic_sandbox
from finloop.payments.connectors.sandbox.engine import BillLine
from finloop.payments.connectors.stripe.sandbox import make_sandbox as stripe_sandbox
from finloop.payments.connectors.wechat.sandbox import make_sandbox as wechat_sandbox
from finloop.reconciliation.importers import CANONICAL_SCHEMA, ImportRejected, parse
from finloop.reconciliation.importers.base import (
    EXPONENTS,
    AmountStyle,
    ColumnMapping,
    SignConvention,
    decimal_minor,
    decimal_ok,
)
from finloop.reconciliation.statement_writer import Movement, camt053, mt940
from tests.reconciliation.conftest import sample

DAY = date(2026, 3, 2)
BILL = [
    BillLine("ch", "payment", "pay_A", "4200000001", None, 12345, 74, "CNY", datetime(2026, 3, 1, 16, 30, tzinfo=UTC)),
    BillLine("ch", "payment", "pay_B", "4200000002", None, 1, 0, "CNY", datetime(2026, 3, 2, 2, 30, tzinfo=UTC)),
    BillLine("ch", "refund", "pay_A", "5000000001", "ref_A", 2000, 12, "CNY", datetime(2026, 3, 2, 3, 0, tzinfo=UTC)),
]
SANDBOXES = {"wechat": wechat_sandbox, "alipay": alipay_sandbox, "stripe": stripe_sandbox,
             "generic": generic_sandbox}


@pytest.mark.parametrize("format", sorted(SANDBOXES))
def test_a_sandbox_bill_parses_back_to_its_lines(format: str) -> None:
    bill = SANDBOXES[format]().bill(BILL, DAY, "ch")
    parsed = parse(format, bill.content, source="ch")
    assert dict(parsed.lines.schema) == CANONICAL_SCHEMA
    rows = parsed.lines.to_dicts()
    assert [r["kind"] for r in rows] == ["payment", "payment", "refund"]
    assert [r["our_reference"] for r in rows] == ["pay_A", "pay_B", "ref_A"]
    assert [r["amount"] for r in rows] == [12345, 1, 2000]
    assert [r["fee_amount"] for r in rows] == [74, 0, 12]
    assert [r["direction"] for r in rows] == ["credit", "credit", "debit"]
    assert {r["currency"] for r in rows} == {"CNY"}
    assert [r["occurred_at"] for r in rows] == [line.at for line in BILL]
    assert rows[0]["channel_reference"] == {"stripe": "pi_4200000001"}.get(format, "4200000001")
    first_line = {"alipay": 6}.get(format, 2)
    assert [r["line_no"] for r in rows] == [first_line, first_line + 1, first_line + 2]
    if format in ("wechat", "alipay"):  # China time: 16:30 UTC on 1 March is 2 March in Beijing
        assert rows[0]["value_on"] == date(2026, 3, 2)
    assert parsed.currency == "CNY"


def test_an_empty_wechat_bill_has_no_lines() -> None:
    parsed = parse("wechat", wechat_sandbox().bill([], DAY, "ch").content, source="ch")
    assert parsed.line_count == 0 and dict(parsed.lines.schema) == CANONICAL_SCHEMA


MOVES = [Movement(1_000_000, "credit", DAY, "stl_1", "BANK0001", "settlement", "settlement"),
         Movement(250_000, "debit", DAY, "po_01M8AKM5H8ZDCDXF0H5TKYT9HB", "BANK0002", "payout", "payout"),
         Movement(1_500, "debit", DAY, None, "BANK0003", "fee", "fee"),
         Movement(7, "credit", DAY, "po_2", None, "returned", "payout_return")]


@pytest.mark.parametrize("format", ["camt053", "mt940"])
def test_a_written_bank_statement_parses_back(format: str) -> None:
    common = dict(account="DE89370400440532013000", currency="EUR", opening_balance=-500, movements=MOVES,
                  statement_id="S1", opening_on=date(2026, 3, 1), closing_on=DAY)
    content = (camt053(created_at=datetime(2026, 3, 2, 18, tzinfo=UTC), **common) if format == "camt053"  # type: ignore[arg-type]
               else mt940(**common))  # type: ignore[arg-type]
    parsed = parse(format, content, source="custody")
    assert (parsed.account, parsed.currency, parsed.business_date) == ("DE89370400440532013000", "EUR", DAY)
    assert (parsed.opening_balance, parsed.closing_balance) == (-500, -500 + 1_000_000 - 250_000 - 1_500 + 7)
    rows = parsed.lines.to_dicts()
    assert [r["kind"] for r in rows] == ["settlement", "payout", "fee", "payout_return"]
    assert [r["amount"] for r in rows] == [1_000_000, 250_000, 1_500, 7]
    assert [r["direction"] for r in rows] == ["credit", "debit", "debit", "credit"]
    assert [r["our_reference"] for r in rows] == ["stl_1", "po_01M8AKM5H8ZDCDXF0H5TKYT9HB", None, "po_2"]
    assert rows[0]["channel_reference"] == "BANK0001" and rows[1]["description"] == "payout"
    assert all(r["value_on"] == DAY for r in rows)
    lines = content.decode().splitlines()
    assert all((":61:" in lines[r["line_no"] - 1]) if format == "mt940" else ("<Ntry>" in lines[r["line_no"] - 1])
               for r in rows)


def test_camt053_other_versions_and_othr_account_ids() -> None:
    content = camt053(account="CUSTODY-001", currency="JPY", opening_balance=0, movements=MOVES[:1],
                      statement_id="S2", created_at=datetime(2026, 3, 2, tzinfo=UTC), opening_on=DAY, closing_on=DAY,
                      version="02")
    parsed = parse("camt053", content, source="custody")
    assert parsed.account == "CUSTODY-001" and parsed.closing_balance == 1_000_000


def test_generic_csv_through_a_mapping(bank_export_mapping: ColumnMapping) -> None:
    parsed = parse("csv", sample("bank_export.csv"), source="bank", mapping=bank_export_mapping)
    rows = parsed.lines.to_dicts()
    assert [(r["value_on"], r["amount"], r["direction"], r["our_reference"]) for r in rows] == [
        (DAY, 100050, "credit", "pay_01SAMPLE0000000000000000A"), (DAY, 25000, "debit", "po_01SAMPLE"),
        (date(2026, 3, 3), 7, "credit", None)]
    assert [r["line_no"] for r in rows] == [2, 3, 4] and {r["kind"] for r in rows} == {"other"}
    minor = ColumnMapping(columns={"value_on": "d", "amount": "a", "direction": "dc", "kind": "k"},
                          amount_style=AmountStyle.MINOR, sign=SignConvention.DIRECTION, credit_values=("C",),
                          debit_values=("D",), default_currency="JPY")
    parsed = parse("csv", b"d,a,dc,k\n2026-03-02,1500,D,Payout\n2026-03-02,20,C,fee\n", source="b", mapping=minor)
    assert parsed.lines.select("amount", "direction", "kind", "currency").rows() == [
        (1500, "debit", "payout", "JPY"), (20, "credit", "fee", "JPY")]
    with pytest.raises(ImportRejected, match="line 2: unknown direction value"):
        parse("csv", b"d,a,dc,k\n2026-03-02,1500,X,payout\n", source="b", mapping=minor)
    with pytest.raises(ImportRejected, match="line 3: bad amount"):
        parse("csv", b"d,a,dc,k\n2026-03-02,1500,C,payout\n2026-03-02,15.00,C,payout\n", source="b", mapping=minor)
    with pytest.raises(ImportRejected, match="needs a saved column mapping"):
        parse("csv", b"d\n", source="b")


@pytest.mark.parametrize(("name", "line", "reason"), [
    ("wechat_bad_amount.csv", 2, "bad amount in 应结订单金额"),
    ("wechat_too_many_decimals.csv", 3, "bad amount"),
    ("wechat_bad_date.csv", 3, "bad time"),
    ("wechat_truncated.csv", 0, "summary header is missing"),
    ("alipay_missing_column.csv", 5, "missing column"),
    ("stripe_bad_date.csv", 3, "bad time in created_utc"),
    ("generic_bad_amount.csv", 3, "bad amount"),
    ("camt053_truncated.xml", 10, "malformed XML"),
    ("camt053_bad_amount.xml", 10, "more than 2 decimals"),
    ("camt053_billion_laughs.xml", 2, "DTDs and entities are refused"),
    ("mt940_unbalanced.sta", 11, "does not equal the closing balance"),
    ("mt940_missing_closing.sta", 11, "missing :62F:"),
])
def test_a_malformed_file_is_rejected_with_its_line_and_reason(name: str, line: int, reason: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse(name.split("_")[0], sample(name), source="s")
    assert caught.value.code == "file_rejected" and caught.value.line == line
    assert reason in caught.value.reason and caught.value.details["line"] == line


def test_more_rejections_of_channel_bills() -> None:
    good = sample("wechat_good.csv")
    # Every bad line is counted; the first is named.
    with pytest.raises(ImportRejected) as caught:
        parse("wechat", good.replace(b"`CNY,", b"`XXX,"), source="s")
    assert (caught.value.line, caught.value.bad_lines, caught.value.reason) == (2, 3, "unknown currency (货币种类)")
    # The summary must agree with the rows (a dropped row).
    lines = good.split(b"\r\n")
    with pytest.raises(ImportRejected, match="summary does not agree"):
        parse("wechat", b"\r\n".join(lines[:2] + lines[3:]), source="s")
    # A short row (a field lost) and a missing backtick.
    with pytest.raises(ImportRejected, match="line 2: a bill line must have 27"):
        parse("wechat", good.replace(b",`0.00,`\r\n", b"\r\n", 1), source="s")
    with pytest.raises(ImportRejected, match="line 3"):
        parse("wechat", good.replace(b",`NATIVE,`SUCCESS", b",NATIVE,`SUCCESS").replace(
            b",NATIVE,`SUCCESS", b",`NATIVE,`SUCCESS", 1), source="s")
    with pytest.raises(ImportRejected, match="line 1: not a WeChat Pay trade bill"):
        parse("wechat", b"hello\n", source="s")
    with pytest.raises(ImportRejected, match="line 3: 9 fields, expected 8"):
        parse("generic", sample("generic_good.csv").replace(b",CNY,2026-03-02T02:30", b",CNY,x,2026-03-02T02:30"),
              source="s")
    assert parse("generic", sample("generic_good.csv") + b"\r\n\n", source="s").line_count == 3
    with pytest.raises(ImportRejected, match="line 3: type must be payment or refund"):  # a blank line inside
        parse("generic", sample("generic_good.csv").replace(b"\npayment,pay_01SAMPLE0000000000000000B",
                                                            b"\n\npayment,pay_01SAMPLE0000000000000000B"), source="s")
    with pytest.raises(ImportRejected, match="does not end with a line break"):
        parse("generic", sample("generic_good.csv")[:-3], source="s")
    with pytest.raises(ImportRejected, match="missing column 'gross'"):
        parse("stripe", sample("stripe_good.csv").replace(b",gross,", b",grosss,"), source="s")
    with pytest.raises(ImportRejected, match="line 6: amount sign does not match"):
        parse("alipay", sample("alipay_good.csv").replace(b"123.45", b"-123.45"), source="s")
    with pytest.raises(ImportRejected, match="unknown format"):
        parse("excel", b"", source="s")


def test_bank_statement_rejections() -> None:
    good = sample("camt053_good.xml")
    with pytest.raises(ImportRejected, match=r"not a camt\.053 document"):
        parse("camt053", good.replace(b"camt.053.001.08", b"camt.052.001.08"), source="s")
    with pytest.raises(ImportRejected, match="CdtDbtInd must be CRDT or DBIT"):
        parse("camt053", good.replace(b"<CdtDbtInd>DBIT</CdtDbtInd><Sts>", b"<CdtDbtInd>X</CdtDbtInd><Sts>", 1),
              source="s")
    with pytest.raises(ImportRejected, match="does not equal the closing balance"):
        parse("camt053", good.replace(b">10000.00<", b">10000.01<", 1), source="s")
    external = (b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://example.invalid/x.dtd">'
                b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>')
    with pytest.raises(ImportRejected, match="DTDs and entities are refused"):
        parse("camt053", external, source="s")
    with pytest.raises(ImportRejected, match="malformed XML"):
        parse("camt053", b"", source="s")
    with pytest.raises(ImportRejected, match="missing :20:"):
        parse("mt940", b"garbage", source="s")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1), st.sampled_from(["CNY", "JPY", "KWD"]),
       st.integers(min_value=0, max_value=3))
def test_decimal_text_to_minor_units_is_exact(minor: int, currency: str, padding: int) -> None:
    exponent = EXPONENTS[currency]
    text = f"{Decimal(minor).scaleb(-exponent):.{exponent}f}" + ("0" * padding if exponent else "")
    if not exponent and padding:
        text += "." + "0" * padding
    frame = pl.DataFrame({"t": [text, text + "1" if exponent else text + ".5"], "e": [exponent, exponent]})
    for exp in (pl.col("e"), exponent):  # per-row exponents, and the one-currency fast path
        out = frame.select(decimal_ok(pl.col("t"), exp).alias("ok"), decimal_minor(pl.col("t"), exp).alias("m"))
        assert out.row(0) == (True, minor)
        assert out.row(1)[0] is False  # one significant decimal too many
        too_big = pl.DataFrame({"t": ["1" + "0" * (15 - exponent)], "e": [exponent]})
        assert too_big.select(decimal_ok(pl.col("t"), exp)).item() is False
