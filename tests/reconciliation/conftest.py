"""Reconciliation import fixtures: the sample files and a bank-export mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from finloop.reconciliation.importers.base import ColumnMapping

SAMPLES = Path(__file__).parent / "samples"

#: The column mapping of samples/bank_export*.csv (a semicolon CSV, dd.mm.yyyy dates, signed major amounts).
BANK_EXPORT_COLUMNS = {"value_on": "Booking date", "amount": "Amount", "currency": "Currency",
                       "our_reference": "Reference", "description": "Details"}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def bank_export_mapping() -> ColumnMapping:
    return ColumnMapping(columns=BANK_EXPORT_COLUMNS, delimiter=";", date_format="%d.%m.%Y")
