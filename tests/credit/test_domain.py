"""Pure rules: the points scale, rating bands and their edges, reason ordering, personal data normalisation."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.credit.domain import (
    DEFAULT_BANDS,
    Rating,
    RatingBand,
    Reason,
    Scaling,
    check_bands,
    check_month,
    masked,
    normalize_national_id,
    normalize_phone,
    probability_text,
    rating_for,
    score_of,
    top_reasons,
)

scalings = st.builds(
    Scaling,
    st.integers(min_value=100, max_value=1000).map(Decimal),
    st.sampled_from([Decimal(1), Decimal(10), Decimal(20), Decimal(50), Decimal("72.5")]),
    st.integers(min_value=5, max_value=80).map(Decimal))


def test_the_default_scale_is_600_points_at_50_to_1_and_20_points_to_double() -> None:
    scale = Scaling()
    assert scale.points_for_odds(50) == pytest.approx(600, abs=1e-9)
    assert scale.points_for_odds(100) == pytest.approx(620, abs=1e-9)
    assert scale.points_for_odds(25) == pytest.approx(580, abs=1e-9)
    assert scale.factor == pytest.approx(20 / math.log(2))
    assert scale.offset == pytest.approx(600 - 20 / math.log(2) * math.log(50))


@given(scalings, st.floats(min_value=0.01, max_value=1000))
def test_base_odds_score_base_points_and_pdo_doubles_the_odds(scale: Scaling, odds: float) -> None:
    assert scale.points_for_odds(float(scale.base_odds)) == pytest.approx(float(scale.base_points), abs=1e-7)
    assert scale.points_for_odds(2 * odds) - scale.points_for_odds(odds) == pytest.approx(float(scale.pdo), abs=1e-7)
    assert scale.points_for_odds(odds / 2) == pytest.approx(scale.points_for_odds(odds) - float(scale.pdo), abs=1e-7)


@given(scalings, st.floats(min_value=0.0005, max_value=0.9995))
def test_points_and_probability_of_default_are_inverse(scale: Scaling, probability: float) -> None:
    points = scale.points_for_odds((1 - probability) / probability)
    assert scale.probability_of_default(points) == pytest.approx(probability, rel=1e-9)
    raw = math.log(probability / (1 - probability))
    assert scale.points_for_log_odds_of_default(raw) == pytest.approx(points, abs=1e-7)


def test_scaling_refuses_nonsense() -> None:
    for kwargs, param in (({"pdo": Decimal(0)}, "pdo"), ({"base_odds": Decimal(0)}, "base_odds"),
                          ({"base_points": Decimal("-1")}, "base_points"), ({"pdo": Decimal("NaN")}, "pdo")):
        with pytest.raises(InvalidRequest) as caught:
            Scaling(**kwargs)  # type: ignore[arg-type]
        assert caught.value.param == param


def test_scores_round_half_up() -> None:
    assert [score_of(p) for p in (599.5, 599.49, -0.5, 600.0, 600.51)] == [600, 599, 0, 600, 601]
    # Half-even on the float's shortest decimal form: ...455 goes up to the even 6, ...445 stays at the even 4.
    assert probability_text(0.0123455) == Decimal("0.012346") and probability_text(0.0123445) == Decimal("0.012344")
    assert probability_text(0.25) == Decimal("0.250000") and probability_text(1.5) == Decimal("1.000000")


def test_rating_band_edges_are_inclusive_at_the_minimum() -> None:
    # Defaults: A >= 620, B >= 580, C >= 540, D >= 500, below that a reject.
    expected = {620: Rating.A, 619: Rating.B, 580: Rating.B, 579: Rating.C, 540: Rating.C, 539: Rating.D,
                500: Rating.D, 499: Rating.REJECT, 900: Rating.A, -5: Rating.REJECT}
    assert {score: rating_for(score) for score in expected} == expected
    custom = check_bands([{"rating": "A", "min_score": 700}, {"rating": "B", "min_score": 650},
                          {"rating": "C", "min_score": 600}, {"rating": "D", "min_score": 550}])
    assert rating_for(700, custom) is Rating.A and rating_for(699, custom) is Rating.B
    assert rating_for(550, custom) is Rating.D and rating_for(549, custom) is Rating.REJECT
    assert DEFAULT_BANDS[0] == RatingBand(Rating.A, 620)


@given(st.lists(st.integers(min_value=-1000, max_value=2000), min_size=4, max_size=4, unique=True),
       st.integers(min_value=-2000, max_value=3000))
def test_a_higher_score_never_gets_a_worse_rating(minimums: list[int], score: int) -> None:
    bands = check_bands([{"rating": r, "min_score": m}
                         for r, m in zip("ABCD", sorted(minimums, reverse=True), strict=True)])
    order = [Rating.A, Rating.B, Rating.C, Rating.D, Rating.REJECT]
    assert order.index(rating_for(score + 1, bands)) <= order.index(rating_for(score, bands))


def test_bad_bands_are_refused() -> None:
    good = [{"rating": "A", "min_score": 620}, {"rating": "B", "min_score": 580}, {"rating": "C", "min_score": 540},
            {"rating": "D", "min_score": 500}]
    for bad, param in ((good[:3], "bands"), ([good[1], good[0], *good[2:]], "bands.0.rating"),
                       ([*good[:3], {"rating": "D", "min_score": 540}], "bands.3.min_score"),
                       ([*good[:3], {"rating": "D", "min_score": 5.5}], "bands.3.min_score"),
                       ([*good[:3], {"rating": "D", "min_score": True}], "bands.3.min_score")):
        with pytest.raises(InvalidRequest) as caught:
            check_bands(bad)
        assert caught.value.code == "invalid_rating_bands" and caught.value.param == param


def test_reasons_are_the_costliest_first_ties_by_name_and_never_free() -> None:
    found = top_reasons([Reason("b", "", "1", 10.0), Reason("a", "", "1", 10.0), Reason("c", "", "1", 30.0),
                         Reason("d", "", "1", 0.0), Reason("e", "", "1", -4.0), Reason("f", "", "1", 2.0),
                         Reason("g", "", "1", 1.0)])
    assert [r.feature for r in found] == ["c", "a", "b", "f"]
    assert top_reasons([Reason("x", "", "1", 0.0)]) == []


def test_personal_data_is_normalised_and_masked() -> None:
    assert normalize_national_id(" 110101-1990 0307 001x ") == "1101011990030700 1X".replace(" ", "")
    assert normalize_phone("+86 (138) 0013-8000") == "+8613800138000"
    assert masked("8000") == "****8000" and masked(None) is None
    for bad in ("12345", "ABC DEF!", "", None, 12345678):
        with pytest.raises(InvalidRequest) as caught:
            normalize_national_id(bad)
        assert caught.value.code == "invalid_national_id"
    for bad in ("12", "+86 abc", "1" * 16):
        with pytest.raises(InvalidRequest):
            normalize_phone(bad)
    assert check_month("2026-03") == "2026-03"
    for bad in ("2026-13", "2026-3", "26-03", 202603):
        with pytest.raises(InvalidRequest):
            check_month(bad)
