"""What every importer shares: the canonical line frame, the rejection error, exact amount parsing.

A parser turns a file's bytes into a :class:`ParsedFile` whose ``lines`` frame has exactly the
canonical columns (``CANONICAL_SCHEMA``). CSV layouts are parsed vectorised with polars: every column
is read as text, then validated and converted with expressions — no per-row Python. Amounts are
turned from their decimal text into integer minor units by string operations (never a float): the
integer digits and the decimals padded to the currency's exponent are concatenated and cast. Decimals
beyond the exponent are accepted only when they are zeros (WeChat Pay pads fees to five places);
any other extra decimal rejects the file.

A bad file raises :class:`ImportRejected` naming the first bad line, the reason and how many lines
are bad; nothing of it is kept.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import polars as pl

from finloop.core.errors import InvalidRequest
from finloop.core.money import _CURRENCIES as _ISO_CURRENCIES
from finloop.core.money import MAX_AMOUNT

KINDS = ("payment", "refund", "fee", "settlement", "payout", "payout_return", "chargeback", "adjustment", "other")
DIRECTIONS = ("credit", "debit")

#: The canonical columns of a parsed file, in order.
CANONICAL_SCHEMA: dict[str, Any] = {
    "line_no": pl.Int64,
    "value_on": pl.Date,
    "occurred_at": pl.Datetime("us", "UTC"),
    "kind": pl.Utf8,
    "our_reference": pl.Utf8,
    "channel_reference": pl.Utf8,
    "amount": pl.Int64,
    "direction": pl.Utf8,
    "fee_amount": pl.Int64,
    "currency": pl.Utf8,
    "status": pl.Utf8,
    "counterparty": pl.Utf8,
    "description": pl.Utf8,
}
CANONICAL_COLUMNS = tuple(CANONICAL_SCHEMA)

#: ISO 4217 minor-unit exponent per currency code.
EXPONENTS: dict[str, int] = {code: c.exponent for code, c in _ISO_CURRENCIES.items()}

#: The longest text kept in a reference/description column (longer is cut, never rejected).
MAX_TEXT = 500
_MAX_DIGITS = len(str(MAX_AMOUNT))  # 16 integer digits at most; the value is then bounded by MAX_AMOUNT


class ImportRejected(InvalidRequest):
    """The file is not acceptable; ``line`` is the 1-based line of the first problem (0: the file)."""

    code = "file_rejected"

    def __init__(self, reason: str, *, line: int = 0, bad_lines: int = 1) -> None:
        where = f"line {line}: " if line else ""
        more = f" ({bad_lines} bad lines)" if bad_lines > 1 else ""
        super().__init__(f"File rejected, {where}{reason}{more}", code="file_rejected", param="file",
                         details={"line": line, "reason": reason, "bad_lines": bad_lines})
        self.line = line
        self.reason = reason
        self.bad_lines = bad_lines


class AmountStyle(StrEnum):
    MAJOR = "major"   # "12.34" in the currency's major unit
    MINOR = "minor"   # "1234" minor units


class SignConvention(StrEnum):
    SIGNED = "signed"        # a signed amount: positive is money to us (credit)
    DIRECTION = "direction"  # a positive amount and a direction column


#: Canonical fields a generic CSV mapping may name (the rest are derived).
MAPPABLE_FIELDS = ("value_on", "occurred_at", "kind", "our_reference", "channel_reference", "amount", "direction",
                   "fee_amount", "currency", "status", "counterparty", "description")


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """How a generic CSV maps onto the canonical columns (saved as a ``recon_mappings`` row).

    ``columns`` maps a canonical field to the header of the file's column. ``value_on`` and ``amount``
    are required; ``currency`` may be a column or a fixed ``default_currency``; ``kind`` a column whose
    values are canonical kinds, or the fixed ``default_kind``.
    """

    columns: Mapping[str, str]
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"
    datetime_format: str = "%Y-%m-%dT%H:%M:%S%.f%:z"
    amount_style: AmountStyle = AmountStyle.MAJOR
    sign: SignConvention = SignConvention.SIGNED
    credit_values: Sequence[str] = ("credit", "C", "CRDT", "CR")
    debit_values: Sequence[str] = ("debit", "D", "DBIT", "DR")
    default_currency: str | None = None
    default_kind: str = "other"


@dataclass(slots=True)
class ParsedFile:
    """A parsed file: canonical lines plus, for bank statements, the account and its balances."""

    format: str
    source: str
    lines: pl.DataFrame
    account: str | None = None
    currency: str | None = None
    business_date: date | None = None
    opening_balance: int | None = None
    closing_balance: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def line_count(self) -> int:
        return self.lines.height


# ------------------------------------------------------------------------------------------ frames


def empty_lines() -> pl.DataFrame:
    return pl.DataFrame(schema=CANONICAL_SCHEMA)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the canonical columns, in order (missing optional columns become null)."""
    exprs = []
    for name, dtype in CANONICAL_SCHEMA.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


def read_text_csv(content: bytes, *, columns: Sequence[str] | None = None, separator: str = ",",
                  quote_char: str | None = '"', first_line: int = 1) -> pl.DataFrame:
    """Read CSV bytes with every column as text, plus ``line_no`` (the file's 1-based line number).

    ``columns``: the expected header (by name, in any order) when the file has one; a missing column
    rejects the file. ``first_line``: the file line of the first CSV line in ``content``. A row with
    more fields than the header rejects the file (found by a plain scan, only on failure); a short row
    reads as nulls, which the format's row checks reject when the column matters. A file that does not
    end with a line break is taken as truncated.
    """
    if content and not content.endswith(b"\n"):
        raise ImportRejected("the file does not end with a line break (truncated?)",
                             line=first_line + content.count(b"\n"))
    content = content.rstrip(b"\r\n") + b"\n"  # blank lines at the end are not rows
    try:
        frame = pl.read_csv(io.BytesIO(content), has_header=True, infer_schema=False, separator=separator,
                            quote_char=quote_char, raise_if_empty=False,
                            truncate_ragged_lines=False)
    except Exception as error:  # noqa: BLE001 - polars raises assorted errors on malformed CSV
        line, reason = _scan_for_ragged(content, separator, first_line)
        raise ImportRejected(reason or f"unreadable CSV ({type(error).__name__})", line=line) from None
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ImportRejected(f"missing column {missing[0]!r}", line=first_line,
                                 bad_lines=len(missing))
    return frame.with_row_index("line_no", offset=first_line + 1).with_columns(pl.col("line_no").cast(pl.Int64))


def _scan_for_ragged(content: bytes, separator: str, first_line: int) -> tuple[int, str]:
    """The first line whose field count differs from the header's (slow path, errors only)."""
    text = content.decode("utf-8", "replace").splitlines()
    if not text:
        return 0, "empty file"
    expected = text[0].count(separator)
    for offset, line in enumerate(text[1:], start=1):
        if line and line.count(separator) != expected and '"' not in line:
            return first_line + offset, f"{line.count(separator) + 1} fields, expected {expected + 1}"
    return 0, ""


def reject_bad_rows(frame: pl.DataFrame, checks: Sequence[tuple[pl.Expr, str]]) -> None:
    """Raise :class:`ImportRejected` on the first row where a check (an expression true when BAD) holds."""
    if not checks or frame.height == 0:
        return
    error: Any = pl.when(checks[0][0].fill_null(True)).then(pl.lit(checks[0][1]))
    for condition, reason in checks[1:]:
        error = error.when(condition.fill_null(True)).then(pl.lit(reason))
    bad = frame.lazy().select(pl.col("line_no"), error.otherwise(pl.lit(None, dtype=pl.Utf8)).alias("_error")) \
        .filter(pl.col("_error").is_not_null()).collect()
    if bad.height:
        first = bad.sort("line_no").row(0)
        raise ImportRejected(str(first[1]), line=int(first[0]), bad_lines=bad.height)


def build_lines(frame: pl.DataFrame, *, derived: Mapping[str, pl.Expr], checks: Sequence[tuple[pl.Expr, str]],
                output: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """One vectorised pass: ``derived`` columns, then the checks (true when BAD, over the derived columns)
    and the canonical ``output`` columns; the first bad row (by line) rejects the file."""
    lazy = frame.lazy().with_columns(**derived)
    if checks:
        error: Any = pl.when(checks[0][0].fill_null(True)).then(pl.lit(checks[0][1]))
        for condition, reason in checks[1:]:
            error = error.when(condition.fill_null(True)).then(pl.lit(reason))
        error = error.otherwise(pl.lit(None, dtype=pl.Utf8))
    else:
        error = pl.lit(None, dtype=pl.Utf8)
    out = lazy.select(pl.col("line_no"), error.alias("_error"),
                      *(expr.alias(name) for name, expr in output.items())).collect()
    bad = out.filter(pl.col("_error").is_not_null())
    if bad.height:
        first = bad.sort("line_no").row(0, named=True)
        raise ImportRejected(str(first["_error"]), line=int(first["line_no"]), bad_lines=bad.height)
    return canonical(out.drop("_error"))


# ------------------------------------------------------------------------------------------ amounts


def exponent_expr(currency: pl.Expr) -> pl.Expr:
    """The currency's minor-unit exponent, null for an unknown code."""
    return currency.replace_strict(EXPONENTS, default=None, return_dtype=pl.Int64)


_DECIMAL = rf"^\s*([+-]?)(\d{{1,{_MAX_DIGITS}}})(?:\.(\d+))?\s*$"


def _groups(text: pl.Expr) -> pl.Expr:
    # One regex pass (shared by decimal_ok and decimal_minor through common-subexpression elimination).
    return text.str.extract_groups(_DECIMAL)


def decimal_ok(text: pl.Expr, exponent: pl.Expr | int) -> pl.Expr:
    """True when ``text`` is a decimal amount with no non-zero digit beyond ``exponent`` decimals, and
    below ``MAX_AMOUNT`` minor units (at most 15 − exponent integer digits: a string test, no arithmetic).

    A fixed ``exponent`` (one currency in the file) is one anchored regex, the fast path."""
    if isinstance(exponent, int):
        pattern = rf"^\s*[+-]?\d{{1,{_MAX_DIGITS - 1 - exponent}}}(\.\d{{0,{exponent}}}0*)?\s*$"
        return text.str.contains(pattern).fill_null(False)
    parts = _groups(text)
    fraction = parts.struct.field("3").fill_null("")
    return ((parts.struct.field("2").str.len_bytes() <= _MAX_DIGITS - 1 - exponent) & (
        (fraction.str.len_bytes() <= exponent) | fraction.str.slice(exponent).str.contains(r"^0*$"))).fill_null(False)


def decimal_minor(text: pl.Expr, exponent: pl.Expr | int) -> pl.Expr:
    """Signed minor units of a decimal amount text (exact: digits concatenated, then cast; null if bad).

    The integer digits and the decimals, padded or cut to the exponent, are joined as one digit string
    and cast to Int64 — string operations only, never a float."""
    if isinstance(exponent, int):
        parts = text.str.strip_chars().str.split_exact(".", 1)
        whole = parts.struct.field("field_0")
        fraction = (parts.struct.field("field_1").fill_null("").str.pad_end(exponent, "0").str.slice(0, exponent)
                    if exponent else pl.lit(""))
        magnitude = (whole.str.strip_prefix("-").str.strip_prefix("+") + fraction).cast(pl.Int64, strict=False)
        return pl.when(whole.str.starts_with("-")).then(-magnitude).otherwise(magnitude)
    groups = _groups(text)
    digits = groups.struct.field("3").fill_null("").str.pad_end(3, "0").str.slice(0, exponent)
    magnitude = (groups.struct.field("2") + digits).cast(pl.Int64, strict=False)
    return pl.when(groups.struct.field("1") == "-").then(-magnitude).otherwise(magnitude)


def file_exponent(frame: pl.DataFrame, currency: pl.Expr) -> pl.Expr | int:
    """The exponent as a constant when the file has one known currency (the fast path), else per row."""
    codes = frame.select(currency.unique().head(2)).to_series().to_list() if frame.height else []
    if len(codes) == 1 and codes[0] in EXPONENTS:
        return EXPONENTS[codes[0]]
    return exponent_expr(currency)


_INTEGER = rf"^[+-]?\d{{1,{_MAX_DIGITS}}}$"


def integer_ok(text: pl.Expr) -> pl.Expr:
    return (text.str.strip_chars().str.contains(_INTEGER) & (integer_minor(text).abs() <= MAX_AMOUNT)).fill_null(False)


def integer_minor(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().str.replace(r"^\+", "").cast(pl.Int64, strict=False)


def to_minor(text: str, currency: str) -> int:
    """One decimal amount text to signed minor units, exactly (for the XML/MT940 parsers)."""
    exponent = EXPONENTS.get(currency)
    if exponent is None:
        raise ValueError(f"unknown currency {currency!r}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"bad amount {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"bad amount {text!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {text!r} has more than {exponent} decimals for {currency}")
    result = int(scaled)
    if abs(result) > MAX_AMOUNT:
        raise ValueError(f"amount {text!r} is too large")
    return result


def clip_text(expr: pl.Expr) -> pl.Expr:
    """Empty text as null, long text cut to ``MAX_TEXT`` characters."""
    s = expr.str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s.str.slice(0, MAX_TEXT))
