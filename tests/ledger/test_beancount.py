"""The Beancount export, judged by Beancount's own checker (bean-check), an independent accounting engine."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from beancount.core.account import is_valid as is_valid_beancount_account
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from finloop.ledger import service
from finloop.ledger.domain import AccountType, PostingSpec, TransferSpec
from finloop.ledger.export import beancount_names, export_beancount, major_units, quote, sanitise_component
from tests.ledger.helpers import open_account, transfer

BEAN_CHECK = Path(sys.executable).parent / "bean-check"


def bean_check(path: Path) -> tuple[int, str]:
    result = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True, check=False, timeout=120)
    return result.returncode, (result.stdout + result.stderr).strip()


# ---------------------------------------------------------------------------------------------- pure


def test_amounts_convert_exactly_by_currency_exponent():
    assert major_units(123456, "CNY") == "1234.56"
    assert major_units(-5, "CNY") == "-0.05"
    assert major_units(0, "CNY") == "0.00"
    assert major_units(1234, "JPY") == "1234"
    assert major_units(1, "BHD") == "0.001"
    assert major_units(10**15, "BHD") == "1000000000000.000"


def test_strings_are_one_line_with_quotes_and_backslashes_escaped():
    assert quote('say "hi"\\now\nnext') == '"say \\"hi\\"\\\\now next"'


def test_components_follow_beancount_rules():
    assert sanitise_component("merchant") == "Merchant"
    assert sanitise_component("channel_fees") == "Channel-fees"
    assert sanitise_component("M1") == "M1"
    assert sanitise_component("-x") == "X-x"
    assert sanitise_component("café") == "Cafe"
    assert sanitise_component("收入") == "X"


def test_colliding_codes_get_distinct_names_and_keep_their_hierarchy():
    keys = [(AccountType.LIABILITY, "liabilities:merchant:M1:available"),
            (AccountType.LIABILITY, "liabilities:merchant:m1:available"),
            (AccountType.EXPENSE, "expenses:channel_fees"),
            (AccountType.EXPENSE, "expenses:channel.fees"),
            (AccountType.EXPENSE, "expenses:channel-fees")]
    names = beancount_names(keys)
    assert len(set(names.values())) == len(keys)
    # A segment that is already a valid component keeps its name; the colliding ones get a hash.
    assert names[keys[0]] == "Liabilities:Merchant:M1:Available"
    assert re.fullmatch(r"Liabilities:Merchant:M1-[0-9a-f]{6}:Available", names[keys[1]])
    # None of these three is a valid component as written, so none may claim the plain name.
    assert all(re.fullmatch(r"Expenses:Channel-fees-[0-9a-f]{6}", names[key]) for key in keys[2:])


_segment = st.text(alphabet=st.sampled_from("abcXYZ019_.-é中"), min_size=1, max_size=6)


@given(st.lists(st.tuples(st.sampled_from(list(AccountType)), st.lists(_segment, min_size=1, max_size=3)),
                min_size=1, max_size=25))
def test_name_mapping_is_valid_and_injective_for_any_codes(raw):
    roots = {AccountType.ASSET: "assets", AccountType.LIABILITY: "liabilities", AccountType.EQUITY: "equity",
             AccountType.INCOME: "income", AccountType.EXPENSE: "expenses"}
    keys = {(account_type, ":".join([roots[account_type], *segments])) for account_type, segments in raw}
    names = beancount_names(keys)
    assert all(is_valid_beancount_account(name) for name in names.values()), names
    assert len(set(names.values())) == len(keys)


# ---------------------------------------------------------------------------------------------- with bean-check


@pytest.fixture
def books(db, tenant, clock):
    """A ledger in CNY, JPY and BHD with multi-leg and multi-currency entries, a reversal and holds."""
    ids: dict[str, str] = {}
    for code, account_type, currencies in [
        ("assets:bank:main", AccountType.ASSET, ["CNY", "JPY", "BHD"]),
        ("assets:bank", AccountType.ASSET, ["CNY"]),
        ("liabilities:merchant:M1:available", AccountType.LIABILITY, ["CNY"]),
        ("liabilities:merchant:m1:available", AccountType.LIABILITY, ["CNY"]),
        ("income:fees", AccountType.INCOME, ["CNY", "JPY", "BHD"]),
        ("equity:capital", AccountType.EQUITY, ["CNY", "JPY", "BHD"]),
        ("expenses:channel_fees", AccountType.EXPENSE, ["CNY"]),
        ("expenses:channel.fees", AccountType.EXPENSE, ["CNY"]),
    ]:
        for code_ in currencies:
            ids[f"{code}/{code_}"] = open_account(db, tenant.id, code, account_type, code_)
    bank = {c: ids[f"assets:bank:main/{c}"] for c in ("CNY", "JPY", "BHD")}
    equity = {c: ids[f"equity:capital/{c}"] for c in ("CNY", "JPY", "BHD")}
    fees = {c: ids[f"income:fees/{c}"] for c in ("CNY", "JPY", "BHD")}

    # Backdated before the accounts existed: the open directives must still precede it.
    with db.uow() as uow:
        service.post_transfer(uow, tenant.id, TransferSpec.simple(
            "seed", bank["CNY"], equity["CNY"], 1_000_000, "CNY", "Seed capital",
            effective_at=clock.now() - timedelta(days=3)))
        uow.commit()
    transfer(db, tenant.id, "jpy-capital", bank["JPY"], equity["JPY"], 500_000, "JPY")
    transfer(db, tenant.id, "bhd-capital", bank["BHD"], equity["BHD"], 1_234_567, "BHD")
    transfer(db, tenant.id, "parent-bank", ids["assets:bank/CNY"], equity["CNY"], 70_001, "CNY")
    clock.advance(timedelta(days=1))
    with db.uow() as uow:
        service.post_transfer(uow, tenant.id, TransferSpec("split", (
            PostingSpec(bank["CNY"], 10_000, "CNY"),
            PostingSpec(ids["expenses:channel_fees/CNY"], 60, "CNY"),
            PostingSpec(ids["liabilities:merchant:M1:available/CNY"], -8_500, "CNY"),
            PostingSpec(ids["liabilities:merchant:m1:available/CNY"], -500, "CNY"),
            PostingSpec(fees["CNY"], -1_060, "CNY")), 'Order #1 "split" \\ with a\nnewline and 中文'))
        service.post_transfer(uow, tenant.id, TransferSpec("multi-currency", (
            PostingSpec(bank["JPY"], 1_200, "JPY"), PostingSpec(fees["JPY"], -1_200, "JPY"),
            PostingSpec(bank["BHD"], 7, "BHD"), PostingSpec(fees["BHD"], -7, "BHD"))))
        uow.commit()
    refund = transfer(db, tenant.id, "mistake", ids["expenses:channel.fees/CNY"], bank["CNY"], 333, "CNY")
    clock.advance(timedelta(hours=30))
    with db.uow() as uow:
        service.reverse_entry(uow, tenant.id, refund)
        posted, _ = service.create_hold(uow, tenant.id, key="hold-post", debit_account_id=bank["CNY"],
                                        credit_account_id=fees["CNY"], amount=5_000, currency_code="CNY")
        service.post_hold(uow, tenant.id, posted.id, amount=4_321)
        voided, _ = service.create_hold(uow, tenant.id, key="hold-void", debit_account_id=bank["JPY"],
                                        credit_account_id=fees["JPY"], amount=99, currency_code="JPY")
        service.void_hold(uow, tenant.id, voided.id)
        service.create_hold(uow, tenant.id, key="hold-pending", debit_account_id=bank["BHD"],
                            credit_account_id=fees["BHD"], amount=1_000, currency_code="BHD", timeout_seconds=3600)
        uow.commit()
    return ids


def export_to(db, tenant_id, path: Path):
    with db.uow(read_only=True) as uow, path.open("w", encoding="utf-8") as out:
        return export_beancount(uow, tenant_id, out)


def test_export_passes_bean_check(db, tenant, books, tmp_path):
    path = tmp_path / "books.beancount"
    summary = export_to(db, tenant.id, path)
    code, output = bean_check(path)
    assert (code, output) == (0, "")
    text = path.read_text(encoding="utf-8")
    assert summary.entries == 9 and summary.pending_holds == 1
    assert summary.balance_assertions == text.count(" balance ")
    assert "open Assets:Bank:Main BHD,CNY,JPY" in text
    assert "  Assets:Bank:Main  10000.00 CNY" in text
    assert "  Assets:Bank:Main  500000 JPY" in text
    assert "  Assets:Bank:Main  1234.567 BHD" in text
    # The parent's assertion includes its sub-account, as Beancount counts it:
    # 10,000.00 + 100.00 - 3.33 + 3.33 + 43.21 in the child, 700.01 in the parent itself.
    assert re.search(r"balance Assets:Bank  10843\.22 ~ 0 CNY", text)
    assert re.search(r"balance Assets:Bank:Main  10143\.21 ~ 0 CNY", text)
    assert "; hld_" in text  # the pending hold is listed, not booked


@pytest.mark.parametrize("tamper", ["balance", "posting"])
def test_tampered_export_fails_bean_check(db, tenant, books, tmp_path, tamper):
    path = tmp_path / "books.beancount"
    export_to(db, tenant.id, path)
    text = path.read_text(encoding="utf-8")
    if tamper == "balance":
        # One minor unit off in one assertion: the zero tolerance catches it.
        tampered = text.replace("balance Assets:Bank:Main  10143.21 ~ 0 CNY",
                                "balance Assets:Bank:Main  10143.22 ~ 0 CNY")
    else:
        # Move money between two legs of one entry: the entry still balances, so only the assertions,
        # taken from our running sums, can notice.
        tampered = text.replace("Liabilities:Merchant:M1:Available  -85.00 CNY",
                                "Liabilities:Merchant:M1:Available  -85.01 CNY", 1)
        tampered = tampered.replace("  Income:Fees  -10.60 CNY", "  Income:Fees  -10.59 CNY", 1)
    assert tampered != text
    path.write_text(tampered, encoding="utf-8")
    code, output = bean_check(path)
    assert code != 0
    assert "Balance failed" in output


def test_export_of_one_tenant_leaves_out_the_others(db, tenant, other_tenant, books, tmp_path):
    bank = open_account(db, other_tenant.id, "assets:bank:other", AccountType.ASSET)
    equity = open_account(db, other_tenant.id, "equity:capital", AccountType.EQUITY)
    transfer(db, other_tenant.id, "other", bank, equity, 42)
    out = io.StringIO()
    with db.uow(read_only=True) as uow:
        export_beancount(uow, tenant.id, out)
    assert "Other" not in out.getvalue() and "0.42" not in out.getvalue()


def test_cli_exports_the_only_tenant(db, tenant, books, tmp_path, monkeypatch, db_url):
    from finloop.cli import app
    from finloop.config import get_settings

    monkeypatch.setenv("FINLOOP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    path = tmp_path / "cli.beancount"
    try:
        result = CliRunner().invoke(app, ["export", "beancount", "--out", str(path)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert bean_check(path) == (0, "")
