"""``finloop bench credit-eod``: the loan book's end of day, loans per second, beside a bare pass over the same rows.

A book of ``loans`` open loans is generated in the database by SQL (applications, loans, accounts and their
installments, terms of 3, 6 and 12 months, disbursed over the previous 28 days; one loan in ten overdue by 1 to
150 days with its first installment unpaid), with an opening general-ledger entry equal to the generated
receivables, so the end of day's own sub-ledger check holds. Then ``days`` consecutive end-of-day runs are timed
(``servicing.eod.run_day``: accrual, billing, advances, days past due, penalties and late fees, write-offs, the
allowance, the check against the general ledger), each day alone.

The anchor, measured in the same database right before: one bare ``UPDATE`` touching every account row once
(the least any set-wise end of day must do). The ratio is the anchor's time over one day's time.

The issue's goal: 1,000,000 loans in under 5 minutes (3,334 loans per second) on this machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

from finloop.db.types import UTCDateTime

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL_SECONDS = 300.0
GOAL_LOANS = 1_000_000
#: The first day the benchmark closes.
FIRST_DAY = date(2026, 6, 1)


def _dialect_sql(dialect: str) -> dict[str, str]:
    if dialect == "postgresql":
        return {"pad": "lpad(CAST(i AS TEXT), 9, '0')", "date": "(DATE '1970-01-01' + CAST({} AS INTEGER))"}
    return {"pad": "printf('%09d', i)", "date": "date(({}) * 86400, 'unixepoch')"}


NUMBERS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "


def _generate(db: Any, tenant_id: str, applicant_id: str, national_index: str, product_id: str, source_id: str,
              loans: int) -> None:
    """Insert the book set-wise. ``d`` is the first closed day's number; a loan's start is ``d - 1 - i % 28`` (an
    overdue loan's ``d - 30 - k``), its principal ``100000 + (i % 50) * 10000``, its term 3, 6 or 12."""
    from finloop.credit.servicing.domain import day_number

    sql = _dialect_sql(db.dialect)
    d = day_number(FIRST_DAY)
    pad = sql["pad"]
    # k: days the first installment is past due for one loan in ten (1..150), else none; p: installments billed.
    overdue = "(i % 10 = 0)"
    k = "(1 + (i / 10) % 150)"
    start = f"(CASE WHEN {overdue} THEN {d} - 30 - {k} ELSE {d} - 1 - i % 28 END)"
    principal = "(100000 + (i % 50) * 10000)"
    term = "(CASE i % 3 WHEN 0 THEN 3 WHEN 1 THEN 6 ELSE 12 END)"
    passed = f"(CASE WHEN NOT {overdue} THEN 0 WHEN (29 + {k}) / 30 < {term} THEN (29 + {k}) / 30 ELSE {term} END)"
    interest = f"({principal} * 15 / 1000)"
    part = f"({principal} / {term})"
    billed_principal = f"(CASE WHEN {passed} = {term} THEN {principal} ELSE {part} * {passed} END)"
    dpd = f"(CASE WHEN {overdue} THEN {k} - 1 ELSE 0 END)"
    now = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    stamp = bindparam("now", value=now, type_=UTCDateTime())
    params = {"count": loans, "tenant": tenant_id, "applicant": applicant_id, "national": national_index,
              "product": product_id, "source": source_id}
    statements = [
        f"""INSERT INTO credit_applications (id, tenant_id, applicant_id, national_id_index, product_id, product_code,
            principal_amount, currency, term, term_unit, purpose, status, auto_outcome, final_outcome, reasons,
            details, reserved_amount, latency_us, submitted_at, decided_at, created_by, version)
            {NUMBERS} SELECT 'lap_' || {pad}, :tenant, :applicant, :national, :product, 'consumer_installment',
            {principal}, 'CNY', {term}, 'month', 'purchase', 'contract_signed', 'approve', 'approve', '[]', '{{}}', 0,
            0, :now, :now, 'bench', 1 FROM n""",
        f"""INSERT INTO credit_loans (id, tenant_id, application_id, applicant_id, product_id, principal_amount,
            currency, schedule, funding_source_id, funding_choice, target, merchant_fee_amount, status, mode,
            entry_ids, created_by, created_at, disbursed_at)
            {NUMBERS} SELECT 'loan_' || {pad}, :tenant, 'lap_' || {pad}, :applicant, :product, {principal}, 'CNY',
            '{{}}', :source, '{{}}', 'customer_account', 0, 'active', 'manual', '[]', 'bench', :now, :now FROM n""",
        f"""INSERT INTO credit_installments (loan_id, number, tenant_id, start_day, due_on, due_day, principal_due,
            interest_due, fees_due, principal_paid, interest_paid, fees_paid, status, late_fee_charged, billed_day)
            {NUMBERS}, m(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM m WHERE j < 12)
            SELECT 'loan_' || {pad}, j, :tenant, {start} + 30 * (j - 1), {sql['date'].format(f'{start} + 30 * j')},
            {start} + 30 * j, CASE WHEN j = {term} THEN {principal} - {part} * ({term} - 1) ELSE {part} END,
            {interest}, 0, 0, 0, 0, CASE WHEN j <= {passed} THEN 'billed' ELSE 'scheduled' END,
            FALSE, CASE WHEN j <= {passed} THEN {start} + 30 * j - 1 ELSE NULL END
            FROM n CROSS JOIN m WHERE j <= {term}""",
        f"""INSERT INTO credit_loan_accounts (loan_id, tenant_id, applicant_id, product_id, kind, limit_group,
            currency, state, disbursed_on, origination_month, principal_amount, principal_outstanding,
            principal_billed, interest_billed, fees_billed, penalty_outstanding, advance_amount, period_number,
            period_start_day, period_due_day, period_interest, period_accrued, dpd, bucket, max_dpd,
            oldest_unpaid_due_day, provision_amount, pd_ppm, interest_income, fee_income, penalty_income,
            paid_amount, written_off_amount, recovered_amount, accrued_today, penalty_today, provision_today,
            processed_day,
            penalty_day, version, created_at, updated_at)
            {NUMBERS} SELECT 'loan_' || {pad}, :tenant, :applicant, :product, 'installment', 'installment', 'CNY',
            CASE WHEN {overdue} THEN 'overdue' ELSE 'performing' END, {sql['date'].format(start)}, '2026-05',
            {principal}, {principal}, {billed_principal}, {interest} * {passed}, 0, 0, 0,
            CASE WHEN {passed} = {term} THEN 0 ELSE {passed} + 1 END, {start} + 30 * {passed},
            {start} + 30 * ({passed} + 1), CASE WHEN {passed} = {term} THEN 0 ELSE {interest} END,
            CASE WHEN {overdue} THEN 0 ELSE {interest} * ({d} - {start}) / 30 END, {dpd},
            CASE WHEN {dpd} = 0 THEN 'M0' WHEN {dpd} <= 30 THEN 'M1' WHEN {dpd} <= 60 THEN 'M2'
                 WHEN {dpd} <= 90 THEN 'M3' ELSE 'M4' END,
            {dpd}, CASE WHEN {overdue} THEN {d} - {k} ELSE NULL END,
            0, 30000, 0, 0, 0, 0, 0, 0, 0, 0, 0, {d} - 1, {d} - 1, 1, :now, :now FROM n""",
    ]
    with db.engine.begin() as connection:
        for statement in statements:
            query = text(statement).bindparams(stamp) if ":now" in statement else text(statement)
            connection.execute(query, params)


def _open_books(db: Any, tenant_id: str) -> None:
    """One opening entry: the generated receivables against ``equity:opening``, so the books equal the accounts."""
    from sqlalchemy import func, select

    from finloop.credit.servicing import books
    from finloop.credit.servicing.books import Receivable
    from finloop.credit.servicing.models import LoanAccount
    from finloop.ledger import service as ledger
    from finloop.ledger.domain import AccountType, PostingSpec, TransferSpec
    from finloop.payments.postings import AccountSpec, ensure_account

    with db.uow() as uow:
        a = LoanAccount
        principal, interest = uow.session.execute(select(
            func.sum(a.principal_outstanding), func.sum(a.interest_billed + a.period_accrued))
            .where(a.tenant_id == tenant_id)).one()
        equity = ensure_account(uow, tenant_id, AccountSpec("equity:opening", AccountType.EQUITY), "CNY")
        postings = (PostingSpec(books.receivable(uow, tenant_id, "installment", Receivable.PRINCIPAL, "CNY"),
                                int(principal), "CNY"),
                    PostingSpec(books.receivable(uow, tenant_id, "installment", Receivable.INTEREST, "CNY"),
                                int(interest), "CNY"),
                    PostingSpec(equity, -int(principal) - int(interest), "CNY"))
        ledger.post_transfer(uow, tenant_id, TransferSpec("bench:opening", postings, "Opening loan book"))
        uow.commit()


def _bench_database(url: str, loans: int, days: int) -> dict[str, Any]:
    from finloop.core.clock import FrozenClock
    from finloop.credit import funding, products
    from finloop.credit import service as credit
    from finloop.credit.servicing import eod
    from finloop.db import migrate
    from finloop.db.uow import Database
    from finloop.payments import service as payments
    from finloop.tenancy import service as tenancy

    migrate.upgrade(url)
    clock = FrozenClock(datetime.combine(FIRST_DAY, datetime.min.time(), UTC))
    db = Database(url, clock=clock)
    try:
        with db.uow() as uow:
            tenant_id = tenancy.create_tenant(uow, name="Servicing bench", actor="bench").id
            product = products.create_product(uow, tenant_id, products.EXAMPLES["consumer_installment"],
                                              actor="bench")
            source = funding.create_source(uow, tenant_id, {"code": "bench_bank", "kind": "partner_bank",
                                                            "currency": "CNY", "annual_rate": "0.06",
                                                            "quota_amount": 10**15}, actor="bench")
            customer = payments.create_customer(uow, tenant_id, reference="bench")
            applicant = credit.create_applicant(uow, tenant_id, party_kind="customer", party_id=customer.id,
                                                declared_income_amount=1_000_000, currency="CNY",
                                                employment="employed", national_id="110101199003070011",
                                                phone=None, bank_account=None, actor="bench")
            ids = (tenant_id, applicant.id, applicant.national_id_index, product.id, source.id)
            uow.commit()
        started = time.perf_counter()
        _generate(db, ids[0], ids[1], ids[2], ids[3], ids[4], loans)
        _open_books(db, tenant_id)
        if db.dialect == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        generated = time.perf_counter() - started
        started = time.perf_counter()
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE credit_loan_accounts SET accrued_today = accrued_today WHERE "
                                    "tenant_id = :tenant"), {"tenant": tenant_id})
        anchor = time.perf_counter() - started
        per_day = []
        for offset in range(days):
            day = FIRST_DAY + timedelta(days=offset)
            clock.set(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC))
            started = time.perf_counter()
            run = eod.run_day(eod.committing(db), tenant_id, day)
            seconds = time.perf_counter() - started
            counts = run.totals.get("counts", {})
            per_day.append({"date": day.isoformat(), "loans": run.loans, "seconds": round(seconds, 2),
                            "loans_per_second": round(run.loans / seconds), "chunks": run.chunks,
                            "billed": counts.get("billed", 0), "penalised": counts.get("penalised", 0),
                            "late_fees": counts.get("late_fees", 0), "written_off": counts.get("written_off", 0),
                            "anchor_ratio": round(anchor / seconds, 3)})
        with db.uow(read_only=True) as uow:
            problems = eod.check_subledger(uow, tenant_id)
        best = min(d["seconds"] for d in per_day)
        return {"loans": loans, "generate_seconds": round(generated, 1),
                "anchor": {"bare_update_seconds": round(anchor, 2), "rows_per_second": round(loans / anchor)},
                "days": per_day, "best_day_seconds": best,
                "projected_seconds_for_1m": round(best * GOAL_LOANS / loans, 1),
                "goal_met": best * GOAL_LOANS / loans < GOAL_SECONDS, "subledger_balanced": not problems}
    finally:
        db.dispose()


def run(*, loans: int = GOAL_LOANS, days: int = 2, sqlite: bool = True, postgres: bool = True,
        postgres_url: str | None = None) -> dict[str, Any]:
    from finloop.bench.ledger import postgres_reachable
    from finloop.db import migrate

    result: dict[str, Any] = {"benchmark": "credit-eod", "goal": f"{GOAL_LOANS} loans in under {GOAL_SECONDS:.0f} s",
                              "cpus": os.cpu_count()}
    if sqlite:
        with tempfile.TemporaryDirectory(prefix="finloop-bench-eod-") as directory:
            result["sqlite"] = _bench_database(f"sqlite:///{Path(directory) / 'eod.db'}", loans, days)
    server = postgres_url or os.environ.get("FINLOOP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    why_not = postgres_reachable(server) if postgres else "not asked for"
    if why_not is None:
        with migrate.scratch_database(server, "finloop_bench_eod") as url:
            result["postgresql"] = _bench_database(url, loans, days)
    else:
        result["postgresql"] = {"skipped": why_not}
    return result

