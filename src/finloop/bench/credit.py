"""``finloop bench credit``: credit scores per second and latency, beside a bare dict lookup and one logistic
evaluation measured in the same run.

Measured in one process, on one thread:

- the models: a scorecard and a LightGBM challenger trained on ``rows`` simulated applicants
  (``credit.sim``, the pipeline of ``finloop credit train --dataset platform``), compiled from the tables
  the registry stores, exactly as scoring compiles them;
- ``scorecard`` and ``gbm``: ``evaluate`` of one applicant's feature vector (points, probability of
  default and the top-4 reason codes), over simulated applicants the models never saw; p50/p99 per call
  and calls per second;
- the anchors, on the same vectors: ``dict_lookup`` (one feature read from the vector) and ``logistic``
  (one logistic evaluation: a weighted sum over the numerical features, missing ones skipped, and ``exp``);
  the ratios say how many
  anchors one score costs, a figure that survives a slower or busier machine;
- ``score_applicant``: the real-time use case end to end on a temporary SQLite database: features from the
  records (grouped queries), champion and challenger, the rating, the insert and the commit, one unit of
  work per score, over ``applicants`` applicants who each have a sandbox bureau report;
- ``batch_rescore``: the monthly re-score of those applicants, applicants per second;
- ``applications``: a simulated batch (one application per applicant, random amount and term, against lines
  granted from their scores and reports): outcome mix, approval / automatic-approval / review rates and the
  stored decision latency p50/p99; then the full review (score, risk decision, limit, multi-borrowing,
  reservation, contract, commit) timed end to end per application on SQLite;
- ``schedules``: repayment schedules generated per second (``credit.schedule``: exact amounts, due dates and
  the APR solved in Decimal): a 12-month annuity with equal periods, and a 24-month annuity by actual/actual
  (ISDA) from a month end; beside the anchor numpy-financial's ``pmt`` + ``ipmt`` + ``ppmt`` + ``irr`` over the
  same 12-month loan in floats, when numpy-financial is installed (a test dependency).
Per-call timings include the timer's own cost (about 0.1 µs), which dominates the dict lookup.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Calls between two reads of the clock against the deadline (the per-call timer runs on every call).
_CHECK_EVERY = 64


def _percentiles(samples_ns: Sequence[int], elapsed: float) -> dict[str, Any]:
    ordered = sorted(samples_ns)
    if not ordered:
        return {"samples": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 2)

    return {"samples": len(ordered), "per_second": round(len(ordered) / elapsed, 1) if elapsed > 0 else None,
            "p50_us": at(0.50), "p99_us": at(0.99), "max_us": round(ordered[-1] / 1000, 2)}


def _timed(items: Sequence[Any], step: Callable[[Any], object], seconds: float) -> dict[str, Any]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    began = time.perf_counter()
    deadline = began + seconds
    i = 0
    while True:
        item = items[i % len(items)]
        start = clock()
        step(item)
        samples.append(clock() - start)
        i += 1
        if i % _CHECK_EVERY == 0 and time.perf_counter() >= deadline:
            break
    return _percentiles(samples, time.perf_counter() - began)


def _logistic_anchor(model: Any) -> Callable[[dict[str, Any]], float]:
    """One logistic evaluation over the scorecard's numerical features, with fixed weights: the anchor is a
    cost, not an answer."""
    weights = [(v.name, -1e-5 * (i + 1)) for i, v in enumerate(model.variables) if v.kind == "numerical"]

    def evaluate(values: dict[str, Any]) -> float:
        z = 0.5
        for name, weight in weights:
            value = values.get(name)
            if value is not None:
                z += weight * value
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    return evaluate


def schedules(seconds: float) -> dict[str, Any]:
    """Schedules per second: a 12-month annuity, a 24-month day-count annuity, and the numpy-financial anchor."""
    from datetime import date
    from decimal import Decimal

    from finloop.credit.daycount import DayCount
    from finloop.credit.schedule import Method, Pricing, schedule

    monthly = Pricing(Method.EQUAL_INSTALLMENT, Decimal("0.18"))
    dated = Pricing(Method.EQUAL_INSTALLMENT, Decimal("0.18"), day_count=DayCount.ACTUAL_ACTUAL)
    principals = [1_000_000 + 37 * i for i in range(64)]
    out: dict[str, Any] = {
        "annuity_12m": _timed(principals, lambda p: schedule(monthly, principal=p, currency_code="CNY", term=12,
                                                             start_on=date(2026, 1, 1)), seconds),
        "annuity_24m_actual_actual": _timed(principals, lambda p: schedule(
            dated, principal=p, currency_code="CNY", term=24, start_on=date(2027, 12, 31)), seconds),
    }
    try:
        import numpy as np
        import numpy_financial as npf
    except ImportError:
        out["anchor_numpy_financial_12m"] = None
        return out
    periods = np.arange(1, 13)

    def anchor(principal: int) -> object:
        rate = 0.18 / 12
        payment = npf.pmt(rate, 12, -principal)
        npf.ipmt(rate, periods, 12, -principal)
        npf.ppmt(rate, periods, 12, -principal)
        return npf.irr([-principal, *([payment] * 12)])

    out["anchor_numpy_financial_12m"] = _timed(principals, anchor, seconds)
    base = out["anchor_numpy_financial_12m"]["p50_us"] or 1e-3
    out["ratios"] = {"annuity_12m_p50_vs_numpy_financial": round(out["annuity_12m"]["p50_us"] / base, 2),
                     "annuity_24m_actual_actual_p50_vs_numpy_financial": round(
                         out["annuity_24m_actual_actual"]["p50_us"] / base, 2)}
    return out


def applications_bench(db: Any, tenant_id: str, applicant_ids: Sequence[str], rng: random.Random,
                       seconds: float) -> dict[str, Any]:
    """One application per applicant (a simulated batch: its outcome mix and stored decision latencies), then the
    full review timed end to end, one unit of work (submit, decide, reserve, contract, commit) per application."""
    from finloop.credit import applications, limits, products

    with db.uow() as uow:
        products.create_product(uow, tenant_id, products.EXAMPLES["consumer_installment"], actor="bench")
        for applicant_id in applicant_ids:
            limits.grant_line(uow, tenant_id, applicant_id, actor="bench")
        uow.commit()

    def submit(applicant_id: str, amount: int | None = None) -> tuple[str, list[str]]:
        with db.uow() as uow:
            row = applications.submit(
                uow, tenant_id, applicant_id=applicant_id, product_code="consumer_installment",
                principal_amount=amount or rng.randrange(100_000, 2_000_000, 100), term=rng.choice([3, 6, 12, 24]),
                purpose="purchase", actor="bench")
            uow.commit()
            return row.status, [r["code"] for r in row.reasons]

    statuses: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for applicant_id in applicant_ids:
        status, codes = submit(applicant_id)
        statuses[status] = statuses.get(status, 0) + 1
        for code in codes:
            reasons[code] = reasons.get(code, 0) + 1
    with db.uow(read_only=True) as uow:
        batch = applications.figures(uow, tenant_id)
    # The timed loop repeats applicants: lift our own multi-borrowing thresholds so it measures a full review,
    # not an early decline.
    with db.uow() as uow:
        applications.set_policy(uow, tenant_id, {"own_applications_review": 1000, "own_applications_decline": 1000,
                                                 "own_open_review": 1000, "own_open_decline": 1000}, actor="bench")
        uow.commit()
    timed = _timed(list(applicant_ids), lambda a: submit(a, 100_000), seconds)
    return {"batch": {"statuses": statuses, "reasons": dict(sorted(reasons.items())), **batch},
            "submit_and_decide": timed}


def run(*, seconds: float = 2.0, rows: int = 5000, applicants: int = 200, seed: int = 1) -> dict[str, Any]:
    from structlog.testing import capture_logs

    from finloop.credit import bureau, flows, registry, scorecard, scoring, sim
    from finloop.credit import service as credit
    from finloop.credit.bureau.sandbox import SandboxBureau
    from finloop.credit.domain import ModelStatus
    from finloop.db import migrate
    from finloop.db.uow import Database
    from finloop.payments import service as payments
    from finloop.tenancy import service as tenancy

    schedule_figures = schedules(seconds)
    trained = scorecard.train(scorecard.platform_dataset(rows, seed), seed=seed)
    descriptions = {f["name"]: f["description"] for f in trained.features}
    card = scorecard.ScorecardModel(trained.scorecard.tables, trained.scaling, descriptions)
    gbm = scorecard.GbmModel(trained.gbm.tables, trained.scaling, descriptions)
    vectors = sim.generate(2000, seed + 1000).rows
    first_name = card.names[0]
    logistic = _logistic_anchor(card)
    result: dict[str, Any] = {
        "model": {"train_rows": rows, "scorecard_features": len(card.names), "gbm_features": len(gbm.names),
                  "gbm_trees": len(gbm.trees), "scorecard_test_auc": trained.scorecard.metrics["auc"],
                  "gbm_test_auc": trained.gbm.metrics["auc"]},
        "anchor": {"dict_lookup": _timed(vectors, lambda v: v[first_name], seconds),
                   "logistic": _timed(vectors, logistic, seconds)},
        "scorecard": _timed(vectors, card.evaluate, seconds),
        "gbm": _timed(vectors, gbm.evaluate, seconds),
    }
    result["schedules"] = schedule_figures
    anchor = result["anchor"]["logistic"]["p50_us"] or 1e-3
    result["ratios"] = {"scorecard_p50_vs_logistic": round(result["scorecard"]["p50_us"] / anchor, 1),
                        "gbm_p50_vs_logistic": round(result["gbm"]["p50_us"] / anchor, 1),
                        "scorecard_p50_vs_dict_lookup": round(
                            result["scorecard"]["p50_us"] / (result["anchor"]["dict_lookup"]["p50_us"] or 1e-3), 1)}

    bureau.use(SandboxBureau(seed=seed, sleep=lambda s: None))
    # The set-up's log lines (vault keys made, bureau pulls) would land in the JSON on stdout: keep them aside.
    try:
        with capture_logs(), tempfile.TemporaryDirectory(prefix="finloop-bench-credit-") as directory:
            url = f"sqlite:///{Path(directory) / 'credit.db'}"
            migrate.upgrade(url)
            db = Database(url)
            rng = random.Random(seed)
            with db.uow() as uow:
                tenant_id = tenancy.create_tenant(uow, name="Credit bench", actor="bench").id
                card_row, gbm_row = registry.register(uow, tenant_id, trained, name="applicant", actor="bench")
                registry.promote(uow, tenant_id, card_row.id, to=ModelStatus.CHAMPION, actor="bench")
                registry.promote(uow, tenant_id, gbm_row.id, to=ModelStatus.CHALLENGER, actor="bench")
                ids = []
                for i in range(applicants):
                    customer = payments.create_customer(uow, tenant_id, reference=f"bench-{i}")
                    ids.append(credit.create_applicant(
                        uow, tenant_id, party_kind="customer", party_id=customer.id,
                        declared_income_amount=rng.randrange(200_000, 3_000_000), currency="CNY",
                        employment="employed", national_id=f"BENCH{i:012d}", actor="bench").id)
                    credit.grant_consent(uow, tenant_id, ids[-1], scope=["bureau_report"], actor="bench")
                uow.commit()
            for applicant_id in ids:
                flows.pull_report(db, tenant_id, applicant_id, actor="bench")

            def score_one(applicant_id: str) -> None:
                with db.uow() as uow:
                    scoring.score_applicant(uow, tenant_id, applicant_id)
                    uow.commit()

            score_one(ids[0])  # warm the compiled models and the champion cache
            result["score_applicant_sqlite"] = _timed(ids, score_one, seconds)
            began = time.perf_counter()
            scored = 0
            while True:
                with db.uow() as uow:
                    done = scoring.rescore_batch(uow, tenant_id, month="2026-01", limit=500)
                    uow.commit()
                scored += done
                if done == 0:
                    break
            elapsed = time.perf_counter() - began
            result["batch_rescore_sqlite"] = {"applicants": scored, "seconds": round(elapsed, 3),
                                              "per_second": round(scored / elapsed, 1) if elapsed > 0 else None}
            result["applications_sqlite"] = applications_bench(db, tenant_id, ids, rng, seconds)
            db.dispose()
    finally:
        bureau.use(None)
        registry.forget()
    return result
