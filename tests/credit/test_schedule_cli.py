"""`finloop credit schedule`: the issue's command line, exact decimal strings, day counts, and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from finloop.cli import app

BASE = ["credit", "schedule", "--principal", "10000.00", "--currency", "CNY", "--annual-rate", "0.18", "--term",
        "12", "--start-date", "2026-01-01"]


def run(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, [*BASE, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_issue_command_prints_decimal_strings_totals_and_rates() -> None:
    shown = run("--method", "equal_installment")
    first = shown["installments"][0]
    assert first == {"number": 1, "due_date": "2026-02-01", "days": 31, "principal": "766.80", "interest": "150.00",
                     "fees": "0.00", "total": "916.80", "balance": "9233.20"}
    assert [i["total"] for i in shown["installments"][:11]] == ["916.80"] * 11
    # 916.7999 rounds up to 916.80, so the borrower pays a hair over 18%: the APR says so.
    assert shown["totals"]["principal"] == "10000.00" and shown["apr"] == "0.180002"
    assert shown["effective_annual_rate"] == "0.195620" and shown["installments"][-1]["total"] == "916.81"
    flat = run("--method", "flat")
    assert flat["totals"]["repaid"] == "11800.00" and (flat["apr"], flat["effective_annual_rate"]) == (
        "0.317163", "0.367582")


@pytest.mark.parametrize("day_count", ["actual_365", "actual_actual", "30_360", "30e_360"])
def test_every_day_count_is_accepted(day_count: str) -> None:
    shown = run("--method", "interest_only", "--day-count", day_count)
    assert shown["day_count"] == day_count and shown["installments"][-1]["principal"] == "10000.00"


def test_every_method_is_accepted_and_the_table_prints() -> None:
    for method in ("equal_installment", "equal_principal", "interest_only", "flat", "revolving"):
        assert run("--method", method)["method"] == method
    table = CliRunner().invoke(app, [*BASE, "--method", "equal_principal"])
    assert table.exit_code == 0 and "APR 0.179999" in table.stdout and "833.37" in table.stdout


def test_a_cash_loan_in_days_with_a_daily_rate() -> None:
    result = CliRunner().invoke(app, ["credit", "schedule", "--principal", "1000", "--currency", "CNY",
                                      "--daily-rate", "0.0005", "--term", "30", "--term-unit", "day", "--method",
                                      "interest_only", "--start-date", "2026-03-02", "--json"])
    shown = json.loads(result.stdout)
    assert shown["installments"] == [{"number": 1, "due_date": "2026-04-01", "days": 30, "principal": "1000.00",
                                      "interest": "15.00", "fees": "0.00", "total": "1015.00", "balance": "0.00"}]
    assert shown["apr"] == "0.182500" and shown["daily_rate"] == "0.0005"


@pytest.mark.parametrize(("args", "exit_code", "text"), [
    (["--principal", "10000.001"], 2, "decimal places"),
    (["--principal", "1e4"], 2, "decimal amount"),
    (["--principal", "-5"], 2, "decimal amount"),
    (["--currency", "XXZ"], 2, "ISO 4217"),
    (["--start-date", "2026-02-30"], 2, "YYYY-MM-DD"),
    (["--method", "balloon"], 1, "invalid_method"),
    (["--day-count", "act/360"], 1, "invalid_day_count"),
    (["--annual-rate", "abc"], 1, "invalid_rate"),
    (["--daily-rate", "0.001"], 2, "--annual-rate"),
    (["--term", "400"], 2, "--term"),
    (["--start-date", "1999-01-01"], 1, "invalid_start_date"),
])
def test_bad_options_are_refused(args: list[str], exit_code: int, text: str) -> None:
    options = dict(zip(BASE[2::2], BASE[3::2], strict=True))
    options.setdefault("--method", "flat")
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options[flag] = value
    result = CliRunner().invoke(app, ["credit", "schedule", *[x for kv in options.items() for x in kv]])
    assert result.exit_code == exit_code, result.output
    assert text in result.output
