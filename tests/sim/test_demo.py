from __future__ import annotations

import io

import pytest
from rich.console import Console

from finloop.config import Settings
from finloop.db.uow import Database
from finloop.sim.demo import DemoRefused, run_demo
from finloop.sim.fraud import PATTERNS
from tests.conftest import make_tenant

#: A small risk day: a week of history for the model, two days of traffic.
SMALL_RISK_DAY = {"risk_training_days": 7, "risk_training_customers": 80, "risk_traffic_days": 2,
                  "risk_traffic_customers": 60}
#: A small credit day, then the rest of its month and one more.
SMALL_CREDIT = {"credit_applications": 10, "credit_months": 1, "credit_monthly_applications": 4}


def test_demo_closes_the_loop_and_runs_again(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", log_level="WARNING")
    out = io.StringIO()
    first = run_demo(settings, Console(file=out, width=200), orders=120, payments=90, daily_payments=8,
                     **SMALL_RISK_DAY, **SMALL_CREDIT)
    assert first["trial_balanced"] and first["integrity"] and first["beancount_ok"]
    # Every discrepancy injected into the week's bills and bank statements is found, and nothing else.
    assert first["recon_injected"] >= 8 and first["recon_precision"] == first["recon_recall"] == 1.0, first
    assert first["safeguarding"] == ["ok"] * 5
    # The risk day: every laundering pattern planted is found and no look-alike; the fraud figures are rates.
    assert first["aml_found"] == first["aml_planted"] and len(first["aml_planted"]) == 7, first
    assert sum(first["aml_false_alerts"].values()) == 0 and first["aml_other_alerts"] == 0
    assert first["risk_events"] > first["risk_fraud"] > 0
    assert all(0 <= first[k] <= 1 for k in ("risk_interception_rate", "risk_false_positive_rate",
                                            "risk_review_rate", "risk_decline_rate"))
    assert set(first["risk_interception_by_pattern"]) <= set(PATTERNS) and first["risk_top_rules"]
    assert "Laundering planted and found" in out.getvalue() and "never used for tuning" in out.getvalue()
    # The credit months: lent and repaid every month, read back through the portfolio service; the loan sub-ledger
    # equals the general ledger and the P&L matches it. The simulated clock starts on a fixed date, so the months do.
    months = first["credit_months"]
    assert set(months) == {"bnpl_electronics", "merchant_revolving", "cash_app"}
    assert sum(m["loans"] for m in months.values()) > 0 and sum(m["repayments"] for m in months.values()) > 0
    assert all(m["pnl"]["net_profit"] == m["pnl"]["income"] - m["pnl"]["cost_of_funds"] - m["pnl"]["provision"]
               - m["pnl"]["credit_loss"] - m["pnl"]["operating_cost"] for m in months.values() if m["pnl"])
    assert first["credit_months_subledger_ok"] and first["credit_months_pnl_reconciled"]
    assert first["credit_months_period"][0].startswith("2026-03-") and first["credit_months_period"][1] == "2026-04-30"
    assert "The book per scenario on 2026-04-30" in out.getvalue()
    again = run_demo(settings, Console(file=io.StringIO(), width=200), orders=40, payments=10, daily_payments=4,
                     **SMALL_RISK_DAY, **SMALL_CREDIT)
    assert again["beancount_ok"] and again["tenant_id"] != first["tenant_id"]
    assert "replayed, posted once" in out.getvalue()
    assert first["payments_ledger_ok"] and first["payments_success_rate"] >= first["payments_static_rate"]
    assert "400 invalid_amount" in out.getvalue()


def test_demo_refuses_a_database_with_real_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'real.db'}"
    from finloop.db.migrate import upgrade

    upgrade(url)
    make_tenant(Database(url), "A real customer")
    with pytest.raises(DemoRefused):
        run_demo(Settings(database_url=url), Console(file=io.StringIO()), orders=10)
