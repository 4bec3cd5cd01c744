"""Importing channel bills and bank statements, and reading their lines back.

``import_file`` parses a file (``importers.parse``), then writes its ``recon_files`` row and all its
``recon_lines`` in the caller's transaction: a rejected file raises before anything is written, and
the same bytes imported again for the same source and business date return the file already there. Lines are
written in bulk: COPY through the psycopg connection on PostgreSQL, one executemany on SQLite.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, cast

import polars as pl
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.reconciliation import importers
from finloop.reconciliation.importers.base import (
    CANONICAL_COLUMNS,
    CANONICAL_SCHEMA,
    EXPONENTS,
    KINDS,
    MAPPABLE_FIELDS,
    AmountStyle,
    ColumnMapping,
    SignConvention,
)
from finloop.reconciliation.models import ReconFile, ReconLine, ReconMapping
from finloop.tenancy.service import current_business_date

MAX_SOURCE = 64
MAX_FILENAME = 255
#: Files above this size are refused before parsing (a day's bill of a busy channel is well below).
MAX_FILE_BYTES = 512 * 1024 * 1024
LINE_SCHEMA: dict[str, Any] = {"id": pl.Int64, "file_id": pl.Utf8, **CANONICAL_SCHEMA}
_LINE_COLUMNS = ("tenant_id", "file_id", *CANONICAL_COLUMNS)


# ------------------------------------------------------------------------------------------ mappings


def save_mapping(uow: UnitOfWork, tenant_id: str, *, name: str, columns: Mapping[str, str], delimiter: str = ",",
                 date_format: str = "%Y-%m-%d", datetime_format: str = "%Y-%m-%dT%H:%M:%S%.f%:z",
                 amount_style: str = "major", sign: str = "signed", credit_values: Sequence[str] = ("credit",),
                 debit_values: Sequence[str] = ("debit",), default_currency: str | None = None,
                 default_kind: str = "other") -> ReconMapping:
    """Save a generic CSV column mapping under a name unique for the tenant."""
    unknown = [field for field in columns if field not in MAPPABLE_FIELDS]
    if unknown:
        raise InvalidRequest(f"Unknown canonical field {unknown[0]!r}; known: {', '.join(MAPPABLE_FIELDS)}.",
                             code="invalid_mapping", param="columns")
    for required in ("value_on", "amount"):
        if required not in columns:
            raise InvalidRequest(f"A mapping must name the {required} column.", code="invalid_mapping",
                                 param="columns")
    if "currency" not in columns and default_currency is None:
        raise InvalidRequest("A mapping needs a currency column or a default_currency.", code="invalid_mapping",
                             param="default_currency")
    if default_currency is not None and default_currency not in EXPONENTS:
        raise InvalidRequest("Unknown currency.", code="invalid_currency", param="default_currency")
    if len(delimiter) != 1 or delimiter in "\"\r\n" or not (delimiter.isprintable() or delimiter == "\t"):
        raise InvalidRequest("The delimiter is one character (not a quote or line break).", code="invalid_mapping",
                             param="delimiter")
    style = _enum(AmountStyle, amount_style, "amount_style")
    convention = _enum(SignConvention, sign, "sign")
    if convention == SignConvention.DIRECTION and ("direction" not in columns or not credit_values
                                                   or not debit_values):
        raise InvalidRequest("The direction sign convention needs a direction column and its credit and debit "
                             "values.", code="invalid_mapping", param="sign")
    if set(credit_values) & set(debit_values):
        raise InvalidRequest("A value cannot mean both credit and debit.", code="invalid_mapping",
                             param="credit_values")
    if default_kind not in KINDS:
        raise InvalidRequest(f"Unknown kind; known: {', '.join(KINDS)}.", code="invalid_mapping",
                             param="default_kind")
    for param, value, dtype in (("date_format", date_format, pl.Date),
                                ("datetime_format", datetime_format, pl.Datetime("us"))):
        if "%" not in value or not _format_works(value, dtype):
            raise InvalidRequest("A format uses strftime directives such as %Y-%m-%d.", code="invalid_mapping",
                                 param=param)
    existing = uow.session.scalar(select(ReconMapping.id).where(ReconMapping.tenant_id == tenant_id,
                                                                ReconMapping.name == name))
    if existing is not None:
        raise Conflict(f"A mapping named {name!r} exists.", code="mapping_exists", param="name")
    mapping = ReconMapping(
        id=uow.ids.new("recon_mapping"), tenant_id=tenant_id, name=name, delimiter=delimiter, columns=dict(columns),
        date_format=date_format, datetime_format=datetime_format, amount_style=style.value, sign=convention.value,
        credit_values=list(credit_values), debit_values=list(debit_values), default_currency=default_currency,
        default_kind=default_kind, created_at=uow.clock.now())
    uow.session.add(mapping)
    uow.session.flush()
    return mapping


def _format_works(fmt: str, dtype: Any) -> bool:
    try:
        pl.Series(["2026-03-02"]).str.strptime(dtype, fmt, strict=False)
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        return False
    return True


def _enum(kind: Any, value: str, param: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise InvalidRequest(f"Unknown {param} {value!r}.", code="invalid_mapping", param=param) from None


def get_mapping(uow: UnitOfWork, tenant_id: str, mapping_id: str) -> ReconMapping:
    mapping = uow.session.scalar(select(ReconMapping).where(ReconMapping.tenant_id == tenant_id,
                                                            ReconMapping.id == mapping_id))
    if mapping is None:
        raise NotFound("No such mapping.", code="mapping_not_found", param="mapping_id")
    return mapping


def list_mappings(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50) -> list[ReconMapping]:
    query = select(ReconMapping).where(ReconMapping.tenant_id == tenant_id)
    if after:
        query = query.where(ReconMapping.id > after)
    return list(uow.session.scalars(query.order_by(ReconMapping.id).limit(limit + 1)))


def column_mapping(mapping: ReconMapping) -> ColumnMapping:
    return ColumnMapping(
        columns=dict(mapping.columns), delimiter=mapping.delimiter, date_format=mapping.date_format,
        datetime_format=mapping.datetime_format, amount_style=AmountStyle(mapping.amount_style),
        sign=SignConvention(mapping.sign), credit_values=tuple(mapping.credit_values),
        debit_values=tuple(mapping.debit_values), default_currency=mapping.default_currency,
        default_kind=mapping.default_kind)


# ------------------------------------------------------------------------------------------ import


def import_file(uow: UnitOfWork, tenant_id: str, *, format: str, content: bytes, source: str,
                business_date: date | None = None, filename: str = "", mapping_id: str | None = None) -> ReconFile:
    """Parse and store one file; the same bytes again return the stored file, nothing duplicated.

    ``business_date``: the day the file reports; by default the statement's closing date or the bill's
    first value date, else today's business date. Raises ``ImportRejected`` (nothing written) on a bad file.
    """
    source_kind = importers.FORMATS.get(format)
    if source_kind is None:
        raise InvalidRequest(f"Unknown format; known: {', '.join(importers.FORMATS)}.", code="invalid_format",
                             param="format")
    if not source or len(source) > MAX_SOURCE or not source.isprintable():
        raise InvalidRequest(f"A source is 1 to {MAX_SOURCE} printable characters.", code="invalid_source",
                             param="source")
    if len(filename) > MAX_FILENAME or not filename.isprintable():
        raise InvalidRequest(f"A filename is at most {MAX_FILENAME} printable characters.", code="invalid_filename",
                             param="filename")
    if len(content) > MAX_FILE_BYTES:
        raise InvalidRequest("The file is too large.", code="file_too_large", param="file")
    digest = hashlib.sha256(content).hexdigest()
    # Two days' bills of a quiet channel can be the same bytes (a header alone): a file is its bytes for a
    # source and a business date, so the date is known before the lookup.
    if business_date is not None:
        existing = _by_digest(uow, tenant_id, source, business_date, digest)
        if existing is not None:
            return existing
    mapping = None
    if format == "csv":
        if mapping_id is None:
            raise InvalidRequest("The csv format needs a mapping_id.", code="mapping_required", param="mapping_id")
        mapping = column_mapping(get_mapping(uow, tenant_id, mapping_id))
    parsed = importers.parse(format, content, source=source, mapping=mapping)
    day = business_date or parsed.business_date or current_business_date(uow, tenant_id)
    existing = _by_digest(uow, tenant_id, source, day, digest)
    if existing is not None:
        return existing
    record = ReconFile(
        id=uow.ids.new("recon_file"), tenant_id=tenant_id, source=source, source_kind=source_kind, format=format,
        business_date=day, filename=filename, sha256=digest, line_count=parsed.line_count,
        account=parsed.account[:100] if parsed.account else None,
        currency=parsed.currency, opening_balance=parsed.opening_balance, closing_balance=parsed.closing_balance,
        mapping_id=mapping_id if format == "csv" else None, imported_at=uow.clock.now())
    try:
        with uow.session.begin_nested():
            uow.session.add(record)
            uow.session.flush()
    except IntegrityError:
        # The same bytes were imported concurrently: theirs stands.
        again = _by_digest(uow, tenant_id, source, day, digest)
        if again is None:
            raise
        return again
    _insert_lines(uow, tenant_id, record.id, parsed.lines)
    return record


def _by_digest(uow: UnitOfWork, tenant_id: str, source: str, day: date, digest: str) -> ReconFile | None:
    return uow.session.scalar(select(ReconFile).where(ReconFile.tenant_id == tenant_id, ReconFile.source == source,
                                                      ReconFile.business_date == day, ReconFile.sha256 == digest))


def _insert_lines(uow: UnitOfWork, tenant_id: str, file_id: str, lines: pl.DataFrame) -> None:
    if lines.height == 0:
        return
    frame = lines.select(pl.lit(tenant_id).alias("tenant_id"), pl.lit(file_id).alias("file_id"),
                         *CANONICAL_COLUMNS)
    if uow.dialect == "postgresql":
        buffer = frame.write_csv(include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f+00:00",
                                 date_format="%Y-%m-%d", null_value="")
        connection = cast("psycopg.Connection[Any]", uow.session.connection().connection.driver_connection)
        statement = f"COPY recon_lines ({', '.join(_LINE_COLUMNS)}) FROM STDIN (FORMAT csv)"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(buffer.encode())
        return
    uow.session.execute(insert(ReconLine), frame.to_dicts())


# ------------------------------------------------------------------------------------------ reads


def get_file(uow: UnitOfWork, tenant_id: str, file_id: str) -> ReconFile:
    record = uow.session.scalar(select(ReconFile).where(ReconFile.tenant_id == tenant_id, ReconFile.id == file_id))
    if record is None:
        raise NotFound("No such file.", code="file_not_found", param="file_id")
    return record


def list_files(uow: UnitOfWork, tenant_id: str, *, source: str | None = None, business_date: date | None = None,
               after: str | None = None, limit: int = 50) -> list[ReconFile]:
    """Files newest first (ids are time-ordered)."""
    query = select(ReconFile).where(ReconFile.tenant_id == tenant_id)
    if source is not None:
        query = query.where(ReconFile.source == source)
    if business_date is not None:
        query = query.where(ReconFile.business_date == business_date)
    if after:
        query = query.where(ReconFile.id < after)
    return list(uow.session.scalars(query.order_by(ReconFile.id.desc()).limit(limit + 1)))


def list_lines(uow: UnitOfWork, tenant_id: str, file_id: str, *, after: int | None = None,
               limit: int = 100) -> list[ReconLine]:
    get_file(uow, tenant_id, file_id)
    query = select(ReconLine).where(ReconLine.tenant_id == tenant_id, ReconLine.file_id == file_id)
    if after is not None:
        query = query.where(ReconLine.id > after)
    return list(uow.session.scalars(query.order_by(ReconLine.id).limit(limit + 1)))


def load_lines(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date) -> pl.DataFrame:
    """Every line of the source's files for that business date, as a frame: the canonical columns plus
    ``id`` and ``file_id``, ordered by id. On PostgreSQL read with COPY TO (no per-row objects)."""
    files = list(uow.session.scalars(select(ReconFile.id).where(
        ReconFile.tenant_id == tenant_id, ReconFile.source == source, ReconFile.business_date == business_date)))
    if not files:
        return pl.DataFrame(schema=LINE_SCHEMA)
    columns = tuple(LINE_SCHEMA)
    if uow.dialect == "postgresql":
        connection = cast("psycopg.Connection[Any]", uow.session.connection().connection.driver_connection)
        query = psycopg.sql.SQL(
            "COPY (SELECT {columns} FROM recon_lines WHERE tenant_id = {tenant} AND file_id = ANY({files}) "
            "ORDER BY id) TO STDOUT (FORMAT csv, HEADER true)").format(
            columns=psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns),
            tenant=psycopg.sql.Literal(tenant_id), files=psycopg.sql.Literal(files))
        buffer = io.BytesIO()
        with connection.cursor() as cursor, cursor.copy(query) as copy:
            for chunk in copy:
                buffer.write(chunk)
        text_schema = dict.fromkeys(columns, pl.Utf8)
        raw = pl.read_csv(buffer.getvalue(), schema=text_schema, has_header=True) if buffer.tell() else \
            pl.DataFrame(schema=text_schema)
        return raw.select(
            pl.col("id").cast(pl.Int64), pl.col("file_id"), pl.col("line_no").cast(pl.Int64),
            pl.col("value_on").str.to_date("%Y-%m-%d"),
            pl.col("occurred_at").str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_zone="UTC", time_unit="us"),
            pl.col("kind"), pl.col("our_reference"), pl.col("channel_reference"), pl.col("amount").cast(pl.Int64),
            pl.col("direction"), pl.col("fee_amount").cast(pl.Int64), pl.col("currency"), pl.col("status"),
            pl.col("counterparty"), pl.col("description"))
    table = ReconLine.__table__
    rows = uow.session.execute(select(*(table.c[c] for c in columns)).where(
        table.c.tenant_id == tenant_id, table.c.file_id.in_(files)).order_by(table.c.id)).all()
    return pl.DataFrame([tuple(row) for row in rows], schema=LINE_SCHEMA, orient="row")


def latest_statement(uow: UnitOfWork, tenant_id: str, *, source: str, on: date,
                     currency: str | None = None) -> ReconFile | None:
    """The latest bank statement of ``source`` dated on or before ``on`` (with a closing balance)."""
    query = select(ReconFile).where(
        ReconFile.tenant_id == tenant_id, ReconFile.source == source, ReconFile.source_kind == "bank",
        ReconFile.business_date <= on, ReconFile.closing_balance.is_not(None))
    if currency is not None:
        query = query.where(ReconFile.currency == currency)
    return uow.session.scalar(query.order_by(ReconFile.business_date.desc(), ReconFile.id.desc()).limit(1))
