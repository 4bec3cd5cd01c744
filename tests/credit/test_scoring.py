"""The registry (versions, champion and challenger, audited moves), real-time scoring with reasons and
ratings, the monthly batch re-score (idempotent per month, also as a worker job), and PSI monitoring."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import registry, scoring
from finloop.credit import service as credit
from finloop.credit.domain import Rating, rating_for
from finloop.credit.models import CreditScore
from finloop.credit.scorecard import ScorecardModel, Trained
from finloop.db.uow import Database
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.conftest import T0, TenantHandle
from tests.credit.conftest import install, make_applicant


def statuses(db: Database, tenant_id: str) -> dict[tuple[int, str], str]:
    with db.uow(read_only=True) as uow:
        return {(m.version, m.kind): m.status for m in registry.list_models(uow, tenant_id, limit=100)}


def test_registry_versions_promotions_and_audit(db: Database, tenant: TenantHandle, german: Trained) -> None:
    with db.uow() as uow:
        first = registry.register(uow, tenant.id, german, name="german", actor="test")
        second = registry.register(uow, tenant.id, german, name="german", actor="test")
        uow.commit()
    assert statuses(db, tenant.id) == {(1, "scorecard"): "draft", (1, "gbm"): "draft", (2, "scorecard"): "draft",
                                       (2, "gbm"): "draft"}
    with db.uow() as uow:
        stored = registry.get_model(uow, tenant.id, first[0].id)
        assert stored.metrics["auc"] == german.scorecard.metrics["auc"] and stored.dataset == "german"
        assert stored.scaling == {"base_points": "600", "base_odds": "50", "pdo": "20"}
        assert ScorecardModel(stored.tables, german.scaling).names == [f["name"] for f in stored.features]
        registry.promote(uow, tenant.id, first[0].id, to="champion", actor="alice")
        registry.promote(uow, tenant.id, first[1].id, to="challenger", actor="alice")
        registry.promote(uow, tenant.id, second[0].id, to="champion", actor="bob")  # retires v1's scorecard
        uow.commit()
    assert statuses(db, tenant.id) == {(1, "scorecard"): "retired", (1, "gbm"): "challenger",
                                       (2, "scorecard"): "champion", (2, "gbm"): "draft"}
    with db.uow() as uow:
        for model_id, to, code in ((second[0].id, "champion", "invalid_model_transition"),
                                   (first[1].id, "draft", "invalid_promotion"),
                                   ("cmd_missing", "champion", "credit_model_not_found")):
            with pytest.raises((Conflict, InvalidRequest, NotFound)) as caught:
                registry.promote(uow, tenant.id, model_id, to=to, actor="x")
            assert caught.value.code == code
        registry.retire(uow, tenant.id, second[0].id, actor="bob")
        with pytest.raises(Conflict):
            registry.retire(uow, tenant.id, second[0].id, actor="bob")
        registry.promote(uow, tenant.id, first[0].id, to="champion", actor="bob")  # a rollback
        uow.commit()
        trail = uow.session.execute(text(
            "SELECT action, actor FROM audit_events WHERE tenant_id = :t AND object_type = 'credit_model' "
            "ORDER BY seq"), {"t": tenant.id}).all()
    assert [a for a, _ in trail] == ["credit.model.trained"] * 4 + [
        "credit.model.promoted_champion", "credit.model.promoted_challenger", "credit.model.retired",
        "credit.model.promoted_champion", "credit.model.retired", "credit.model.promoted_champion"]
    assert statuses(db, tenant.id)[(1, "scorecard")] == "champion"


def test_real_time_score_with_rating_reasons_and_the_challenger_beside_it(db: Database, tenant: TenantHandle,
                                                                          platform: Trained) -> None:
    party = make_applicant(db, tenant.id, "alice")
    card, gbm = install(db, tenant.id, platform)
    with db.uow() as uow:
        row = scoring.score_applicant(uow, tenant.id, party.applicant_id)
        uow.commit()
    model = ScorecardModel(platform.scorecard.tables, platform.scaling)
    expected = model.evaluate(row.features)
    assert (row.model_id, row.model_version, row.model_kind, row.mode) == (card.id, 1, "scorecard", "real_time")
    assert row.score == expected.score and row.rating == rating_for(row.score).value
    assert [r["code"] for r in row.reasons] == [r.feature for r in expected.reasons] and 1 <= len(row.reasons) <= 4
    assert row.features["order_count_365d"] == 0.0 and row.features["bureau_score"] is None
    assert row.challenger is not None and row.challenger["model_id"] == gbm.id
    assert row.batch_month is None and row.as_of == T0
    # A tenant's own bands rate the same score differently.
    with db.uow() as uow:
        credit.set_bands(uow, tenant.id, [{"rating": "A", "min_score": row.score + 30},
                                          {"rating": "B", "min_score": row.score + 20},
                                          {"rating": "C", "min_score": row.score + 10},
                                          {"rating": "D", "min_score": row.score}], actor="test")
        again = scoring.score_applicant(uow, tenant.id, party.applicant_id)
        assert again.score == row.score and again.rating == Rating.D.value
        uow.commit()


def test_scoring_needs_an_applicable_champion(db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                                              german: Trained, platform: Trained) -> None:
    party = make_applicant(db, tenant.id, "alice")
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        scoring.score_applicant(uow, tenant.id, party.applicant_id)
    assert caught.value.code == "no_champion_model"
    install(db, tenant.id, german, name="german")
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        scoring.score_applicant(uow, tenant.id, party.applicant_id, model_name="german")
    assert caught.value.code == "model_not_applicable"
    install(db, other_tenant.id, platform)
    with db.uow() as uow, pytest.raises(Conflict) as caught:  # another tenant's champion is not ours
        scoring.score_applicant(uow, tenant.id, party.applicant_id)
    assert caught.value.code == "no_champion_model"
    with db.uow() as uow, pytest.raises(NotFound):
        scoring.score_applicant(uow, other_tenant.id, party.applicant_id)
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(CreditScore)) == 0


def test_the_monthly_batch_scores_each_applicant_once_per_month(db: Database, tenant: TenantHandle,
                                                                clock: FrozenClock, platform: Trained) -> None:
    parties = [make_applicant(db, tenant.id, f"c{i}", national_id=f"3301061985010{i:05d}",
                              income=300_000 + 250_000 * i) for i in range(7)]
    with db.uow() as uow:
        assert scoring.rescore_batch(uow, tenant.id, month="2026-03") == 0  # no champion: nothing to do
    install(db, tenant.id, platform)
    done = []
    for _ in range(4):
        with db.uow() as uow:
            done.append(scoring.rescore_batch(uow, tenant.id, month="2026-03", limit=3))
            uow.commit()
    assert done == [3, 3, 1, 0]
    with db.uow() as uow:
        assert scoring.rescore_batch(uow, tenant.id, month="2026-03") == 0  # run again: nothing twice
        rows = scoring.list_scores(uow, tenant.id, month="2026-03", limit=100)
        assert sorted(r.applicant_id for r in rows) == sorted(p.applicant_id for p in parties)
        assert {r.mode for r in rows} == {"batch"}
        one = scoring.score_applicant(uow, tenant.id, parties[0].applicant_id)
        batch_one = next(r for r in rows if r.applicant_id == parties[0].applicant_id)
        assert (one.score, one.reasons) == (batch_one.score, batch_one.reasons)  # the same features, same answer
        uow.commit()
    make_applicant(db, tenant.id, "late", national_id="330106198501019999")
    with db.uow() as uow:
        assert scoring.rescore_batch(uow, tenant.id, month="2026-03") == 1  # only the newcomer
        assert scoring.rescore_batch(uow, tenant.id, month="2026-04") == 8  # a new month: everyone
        uow.commit()
    with db.uow() as uow, pytest.raises(InvalidRequest):
        scoring.rescore_batch(uow, tenant.id, month="2026-13")


def test_the_rescore_job_runs_after_the_close_and_records_stability(db: Database, tenant: TenantHandle,
                                                                     clock: FrozenClock, platform: Trained) -> None:
    for i in range(5):
        make_applicant(db, tenant.id, f"c{i}", national_id=f"3301061985010{i:05d}", income=400_000 * (i + 1))
    card, _ = install(db, tenant.id, platform)
    jobs = Registry()
    jobs.register(load_jobs().get("credit.rescore"))
    clock.advance(timedelta(days=1))  # Monday 2 March has closed
    first = Runner(db, jobs).run_pass().outcomes
    assert [(o.job, o.business_date, o.status, o.processed) for o in first] == [
        ("credit.rescore", date(2026, 3, 2), "succeeded", 5)]
    clock.advance(timedelta(days=1))
    second = Runner(db, jobs).run_pass().outcomes
    assert [(o.business_date, o.status, o.processed) for o in second] == [(date(2026, 3, 3), "succeeded", 0)]
    with db.uow(read_only=True) as uow:
        assert len(scoring.list_scores(uow, tenant.id, month="2026-03", limit=100)) == 5
        model = registry.get_model(uow, tenant.id, card.id)
        assert model.drift is not None and model.drift["scores"] == 5 and model.drift["month"] == "2026-03"
        assert model.drift["psi"] >= 0 and model.drift["level"] in ("stable", "moderate", "significant")


def test_population_stability_of_scores_against_training(db: Database, tenant: TenantHandle,
                                                          platform: Trained) -> None:
    card, gbm = install(db, tenant.id, platform)
    for i in range(6):
        make_applicant(db, tenant.id, f"c{i}", national_id=f"3301061985010{i:05d}")
    with db.uow() as uow:
        empty = scoring.population_stability(uow, tenant.id, card.id, month="2026-03")
        assert (empty["scores"], empty["psi"]) == (0, None)
        scoring.rescore_batch(uow, tenant.id, month="2026-03")
        result = scoring.population_stability(uow, tenant.id, card.id, month="2026-03", record=True)
        challenger = scoring.population_stability(uow, tenant.id, gbm.id, days=7)
        uow.commit()
    # Applicants without records or bureau data all look alike: far from the training population.
    assert result["scores"] == 6 and result["psi"] > 0.25 and result["level"] == "significant"
    assert sum(result["actual"]) == pytest.approx(1.0, abs=1e-5) and len(result["actual"]) == len(result["edges"]) + 1
    assert challenger["scores"] == 6
    with db.uow(read_only=True) as uow:
        assert registry.get_model(uow, tenant.id, card.id).drift == result
    # Scored like the training population, the PSI is small.
    model = ScorecardModel(platform.scorecard.tables, platform.scaling)
    from finloop.risk.ml import drift

    scores = [float(model.evaluate(r).score) for r in platform_rows(2000)]
    assert drift.compare(platform.scorecard.reference, scores)["psi"] < 0.1


def platform_rows(rows: int) -> list[dict]:  # type: ignore[type-arg]
    from finloop.credit import sim

    return sim.generate(rows, seed=3).rows
