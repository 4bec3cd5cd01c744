"""Importing files into the database: bulk lines, idempotent re-import, rejection writes nothing, isolation."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from sqlalchemy import func, select

from finloop.db.uow import Database
from finloop.reconciliation import service
from finloop.reconciliation.importers import CANONICAL_COLUMNS, ImportRejected, parse
from finloop.reconciliation.models import ReconFile, ReconLine
from tests.conftest import TenantHandle
from tests.reconciliation.conftest import BANK_EXPORT_COLUMNS, sample

DAY = date(2026, 3, 2)


def _counts(db: Database) -> tuple[int, int]:
    with db.uow(read_only=True) as uow:
        return (uow.session.scalar(select(func.count()).select_from(ReconFile)) or 0,
                uow.session.scalar(select(func.count()).select_from(ReconLine)) or 0)


def test_import_stores_lines_once_and_loads_them_back(db: Database, tenant: TenantHandle,
                                                      other_tenant: TenantHandle) -> None:
    content = sample("wechat_good.csv")
    with db.uow() as uow:
        first = service.import_file(uow, tenant.id, format="wechat", content=content, source="wxpay",
                                    filename="bill.csv")
        statement = service.import_file(uow, tenant.id, format="camt053", content=sample("camt053_good.xml"),
                                        source="custody")
        uow.commit()
    assert (first.line_count, first.business_date, first.source_kind, first.currency) == (3, DAY, "channel", "CNY")
    assert (statement.source_kind, statement.opening_balance, statement.closing_balance, statement.account) == (
        "bank", 5_000_000, 5_748_500, "DE89370400440532013000")
    # The same bytes again (even under another name): the stored file, nothing duplicated.
    with db.uow() as uow:
        again = service.import_file(uow, tenant.id, format="wechat", content=content, source="wxpay",
                                    filename="copy.csv")
        uow.commit()
    assert again.id == first.id and _counts(db) == (2, 6)
    with db.uow(read_only=True) as uow:
        frame = service.load_lines(uow, tenant.id, source="wxpay", business_date=DAY)
        assert service.load_lines(uow, other_tenant.id, source="wxpay", business_date=DAY).height == 0
        assert service.load_lines(uow, tenant.id, source="wxpay", business_date=date(2026, 3, 3)).height == 0
        empty = service.load_lines(uow, tenant.id, source="nobody", business_date=DAY)
    expected = parse("wechat", content, source="wxpay").lines
    assert frame.columns == ["id", "file_id", *CANONICAL_COLUMNS] and empty.schema == frame.schema
    assert frame.drop("id", "file_id").equals(expected)  # every column and type survives the round trip
    assert frame["file_id"].unique().to_list() == [first.id] and frame["id"].is_sorted()
    # The other tenant may import the same bytes: its own file.
    with db.uow() as uow:
        theirs = service.import_file(uow, other_tenant.id, format="wechat", content=content, source="wxpay")
        uow.commit()
    assert theirs.id != first.id and _counts(db) == (3, 9)


def test_a_rejected_file_writes_nothing(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow, pytest.raises(ImportRejected) as caught:
        service.import_file(uow, tenant.id, format="wechat", content=sample("wechat_bad_date.csv"), source="wx")
    assert caught.value.details == {"line": 3, "reason": "bad time in 交易时间", "bad_lines": 1}
    assert _counts(db) == (0, 0)


def test_mapped_csv_import(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow:
        mapping = service.save_mapping(uow, tenant.id, name="hausbank", columns=BANK_EXPORT_COLUMNS, delimiter=";",
                                       date_format="%d.%m.%Y")
        record = service.import_file(uow, tenant.id, format="csv", content=sample("bank_export.csv"),
                                     source="hausbank", business_date=DAY, mapping_id=mapping.id)
        uow.commit()
    with db.uow(read_only=True) as uow:
        frame = service.load_lines(uow, tenant.id, source="hausbank", business_date=DAY)
        numbers = [line.line_no for line in service.list_lines(uow, tenant.id, record.id, limit=2)]
    assert frame.select("amount", "direction", "currency").rows() == [
        (100050, "credit", "EUR"), (25000, "debit", "EUR"), (7, "credit", "EUR")]
    assert numbers == [2, 3, 4] and record.mapping_id == mapping.id
    assert frame.filter(pl.col("value_on") == date(2026, 3, 3)).height == 1
