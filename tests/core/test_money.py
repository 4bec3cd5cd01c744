"""Money, rounding and allocation: exact arithmetic checked against independent oracles."""

from __future__ import annotations

import math
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
)
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.core.money import (
    MAX_AMOUNT,
    Money,
    Rounding,
    allocate,
    check_amount,
    currency,
    currency_codes,
    round_minor,
)

DECIMAL_MODE = {
    Rounding.HALF_EVEN: ROUND_HALF_EVEN,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.DOWN: ROUND_DOWN,
    Rounding.UP: ROUND_UP,
    Rounding.FLOOR: ROUND_FLOOR,
    Rounding.CEILING: ROUND_CEILING,
}

modes = st.sampled_from(list(Rounding))
codes = st.sampled_from(currency_codes())
#: Decimals far past the 28 digits of the default context, with up to 40 places.
decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e40"), max_value=Decimal("1e40"),
                       places=None)
fractions = st.fractions(max_denominator=10**12).filter(lambda f: abs(f) < 10**30)
big_ints = st.integers(min_value=-(10**35), max_value=10**35)


def quantize_oracle(value: Decimal, mode: Rounding) -> int:
    """Decimal's own quantize, in a context wide enough that no digit of the integer part is lost."""
    context = Context(prec=max(value.adjusted(), 0) + 5)
    return int(value.quantize(Decimal(1), rounding=DECIMAL_MODE[mode], context=context))


def fraction_oracle(value: Fraction, mode: Rounding) -> int:
    """Round p/q through Decimal: truncate the division to enough digits, then quantize.

    A value that is not itself on a rounding boundary (an integer or a half) lies at least 1/(2q) away
    from every boundary, so truncating below that distance keeps it on the same side: the quantize
    of the truncated decimal decides exactly as the fraction would. A value on a boundary has q of
    1 or 2 and divides exactly.
    """
    integer_digits = len(str(abs(value.numerator) // value.denominator))
    places = len(str(2 * value.denominator)) + 1
    context = Context(prec=integer_digits + places + 2, rounding=ROUND_DOWN)
    truncated = context.divide(Decimal(value.numerator), Decimal(value.denominator))
    return quantize_oracle(truncated, mode)


# ---------------------------------------------------------------------------------------------- Money


@pytest.mark.parametrize("bad", [12.5, 100.0, True, False, Decimal("1"), "100", None])
def test_money_with_non_int_minor_is_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(bad, "CNY")  # type: ignore[arg-type]


def test_money_with_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money(100, "XXX")
    assert caught.value.code == "unknown_currency"


def test_money_has_no_float_conversion() -> None:
    with pytest.raises(TypeError):
        float(Money(150, "USD"))  # type: ignore[arg-type]


@pytest.mark.parametrize("operation", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b,
    lambda a, b: a >= b,
])
def test_mixed_currency_arithmetic_is_refused(operation) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest) as caught:
        operation(Money(100, "CNY"), Money(100, "USD"))
    assert caught.value.code == "currency_mismatch"


def test_money_arithmetic_with_a_bare_int_is_refused() -> None:
    with pytest.raises(TypeError):
        Money(100, "CNY") + 5  # type: ignore[operator]


def test_money_of_different_currencies_is_never_equal() -> None:
    assert Money(100, "CNY") != Money(100, "USD")
    assert Money(100, "CNY") == Money(100, "CNY")


@given(a=big_ints, b=big_ints, code=codes)
def test_same_currency_arithmetic_matches_integers(a: int, b: int, code: str) -> None:
    x, y = Money(a, code), Money(b, code)
    assert (x + y).minor == a + b
    assert (x - y).minor == a - b
    assert (-x).minor == -a
    assert (x < y) == (a < b) and (x >= y) == (a >= b)
    assert bool(x) == (a != 0)


@pytest.mark.parametrize(("code", "exponent"), [
    ("JPY", 0), ("KRW", 0), ("CNY", 2), ("USD", 2), ("EUR", 2), ("GBP", 2), ("HKD", 2), ("BHD", 3), ("KWD", 3),
])
def test_currency_exponents_follow_iso_4217(code: str, exponent: int) -> None:
    assert currency(code).exponent == exponent
    assert currency(code).minor_per_major == 10**exponent


@pytest.mark.parametrize(("money", "major"), [
    (Money(12345, "CNY"), Decimal("123.45")),
    (Money(-5, "USD"), Decimal("-0.05")),
    (Money(1234, "JPY"), Decimal("1234")),
    (Money(1, "BHD"), Decimal("0.001")),
    (Money(0, "BHD"), Decimal("0")),
])
def test_to_major_places_the_decimal_point_by_exponent(money: Money, major: Decimal) -> None:
    assert money.to_major() == major
    assert money.to_major().as_tuple().exponent == -currency(money.currency).exponent


@given(minor=big_ints, code=codes)
def test_to_major_is_exact_and_from_major_inverts_it(minor: int, code: str) -> None:
    money = Money(minor, code)
    major = money.to_major()
    assert Fraction(major) == Fraction(minor, 10 ** currency(code).exponent)
    assert Money.from_major(major, code) == money
    assert Money.from_major(str(major), code) == money


@given(major=decimals, code=codes, mode=modes)
def test_from_major_rounds_by_the_named_mode(major: Decimal, code: str, mode: Rounding) -> None:
    minor = Fraction(major) * 10 ** currency(code).exponent
    assert Money.from_major(major, code, mode).minor == fraction_oracle(minor, mode)


@pytest.mark.parametrize(("major", "code", "mode", "minor"), [
    ("1.005", "USD", Rounding.HALF_UP, 101),
    ("1.005", "USD", Rounding.HALF_EVEN, 100),
    ("1.015", "USD", Rounding.HALF_EVEN, 102),
    ("1234.5", "JPY", Rounding.HALF_EVEN, 1234),
    ("1.2345", "BHD", Rounding.HALF_UP, 1235),
    ("-1.005", "USD", Rounding.DOWN, -100),
    ("12345678901234567890123456789.01", "USD", Rounding.HALF_EVEN, 1234567890123456789012345678901),
])
def test_from_major_examples(major: str, code: str, mode: Rounding, minor: int) -> None:
    assert Money.from_major(Decimal(major), code, mode).minor == minor


@pytest.mark.parametrize("bad", [1.5, True])
def test_from_major_refuses_float_and_bool(bad: object) -> None:
    with pytest.raises(TypeError):
        Money.from_major(bad, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["12,50", "abc", "", "NaN", "Infinity"])
def test_from_major_refuses_text_that_is_not_a_finite_number(bad: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money.from_major(bad, "USD")
    assert caught.value.code == "invalid_amount"


@given(minor=big_ints, rate=decimals, mode=modes)
def test_multiply_by_a_decimal_rate_rounds_the_exact_product(minor: int, rate: Decimal, mode: Rounding) -> None:
    expected = fraction_oracle(Fraction(rate) * minor, mode)
    assert Money(minor, "CNY").multiply(rate, mode) == Money(expected, "CNY")


def test_multiply_examples() -> None:
    # A 0.6% wallet fee on CNY 100.00, and on CNY 0.50 where it is under half a fen.
    assert Money(10000, "CNY").multiply(Decimal("0.006"), Rounding.HALF_UP) == Money(60, "CNY")
    assert Money(50, "CNY").multiply(Decimal("0.006"), Rounding.HALF_UP) == Money(0, "CNY")
    assert Money(50, "CNY").multiply(Decimal("0.006"), Rounding.UP) == Money(1, "CNY")
    assert Money(3, "JPY").multiply(Fraction(1, 2), Rounding.HALF_EVEN) == Money(2, "JPY")


@pytest.mark.parametrize("bad", [0.006, True])
def test_multiply_refuses_float_and_bool_rates(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(100, "CNY").multiply(bad, Rounding.HALF_UP)  # type: ignore[arg-type]


def test_multiply_refuses_a_nan_rate() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money(100, "CNY").multiply(Decimal("NaN"), Rounding.HALF_UP)
    assert (caught.value.code, caught.value.param) == ("invalid_amount", "rate")


# ---------------------------------------------------------------------------------------------- rounding


@given(value=decimals, mode=modes)
def test_round_minor_of_decimals_matches_quantize(value: Decimal, mode: Rounding) -> None:
    assert round_minor(value, mode) == quantize_oracle(value, mode)


@given(value=fractions, mode=modes)
def test_round_minor_of_fractions_matches_quantize(value: Fraction, mode: Rounding) -> None:
    assert round_minor(value, mode) == fraction_oracle(value, mode)


@given(value=st.integers(min_value=-(10**30), max_value=10**30), mode=modes)
def test_round_minor_of_halves_matches_quantize(value: int, mode: Rounding) -> None:
    # Exact halves are where the modes disagree; random fractions rarely land on them.
    half = Fraction(2 * value + 1, 2)
    assert round_minor(half, mode) == fraction_oracle(half, mode)
    as_decimal = Context(prec=100).divide(Decimal(2 * value + 1), Decimal(2))
    assert round_minor(as_decimal, mode) == quantize_oracle(as_decimal, mode) == fraction_oracle(half, mode)


@given(value=big_ints, mode=modes)
def test_round_minor_keeps_integers(value: int, mode: Rounding) -> None:
    assert round_minor(value, mode) == value
    assert round_minor(Fraction(value), mode) == value
    assert round_minor(Decimal(value), mode) == value


@given(value=fractions, mode=modes)
def test_round_minor_moves_less_than_one_unit(value: Fraction, mode: Rounding) -> None:
    assert abs(round_minor(value, mode) - value) < 1


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("2.5"), {"half_even": 2, "half_up": 3, "down": 2, "up": 3, "floor": 2, "ceiling": 3}),
    (Decimal("-2.5"), {"half_even": -2, "half_up": -3, "down": -2, "up": -3, "floor": -3, "ceiling": -2}),
    (Decimal("3.5"), {"half_even": 4, "half_up": 4, "down": 3, "up": 4, "floor": 3, "ceiling": 4}),
    (Decimal("-0.1"), {"half_even": 0, "half_up": 0, "down": 0, "up": -1, "floor": -1, "ceiling": 0}),
])
def test_round_minor_examples(value: Decimal, expected: dict[str, int]) -> None:
    assert {mode.value: round_minor(value, mode) for mode in Rounding} == expected
    assert {mode.value: round_minor(Fraction(value), mode) for mode in Rounding} == expected


@pytest.mark.parametrize("bad", [2.5, True])
def test_round_minor_refuses_float_and_bool(bad: object) -> None:
    with pytest.raises(TypeError):
        round_minor(bad, Rounding.HALF_EVEN)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_round_minor_refuses_non_finite_decimals(bad: Decimal) -> None:
    with pytest.raises(InvalidRequest):
        round_minor(bad, Rounding.HALF_EVEN)


# ---------------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(("value", "code"), [
    (1.0, "invalid_amount"), (True, "invalid_amount"), ("5", "invalid_amount"), (MAX_AMOUNT + 1, "amount_too_large"),
    (-(MAX_AMOUNT + 1), "amount_too_large"), (2**63, "amount_too_large"),
])
def test_check_amount_refuses_non_ints_and_huge_values(value: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_amount(value)
    assert caught.value.code == code


def test_check_amount_bounds() -> None:
    assert check_amount(MAX_AMOUNT) == MAX_AMOUNT
    assert check_amount(0) == 0
    with pytest.raises(InvalidRequest):
        check_amount(0, allow_zero=False)
    with pytest.raises(InvalidRequest):
        check_amount(-1, allow_negative=False)


# ---------------------------------------------------------------------------------------------- allocate

wholes = st.integers(min_value=0, max_value=10**18)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any)
exact_weight_lists = st.lists(
    st.one_of(st.integers(min_value=0, max_value=1000),
              st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False),
              st.fractions(min_value=0, max_value=1000, max_denominator=997)),
    min_size=1, max_size=8).filter(lambda ws: sum(Fraction(w) for w in ws) > 0)


def exact_share(whole: int, weights: list[int | Decimal | Fraction], index: int) -> Fraction:
    total = sum((Fraction(w) for w in weights), Fraction(0))
    return whole * Fraction(weights[index]) / total


@given(whole=wholes, weights=st.one_of(weight_lists, exact_weight_lists))
def test_allocate_parts_sum_to_the_whole_and_are_never_negative(whole: int, weights: list[int]) -> None:
    parts = allocate(whole, weights)
    assert sum(parts) == whole
    assert len(parts) == len(weights)
    assert all(part >= 0 for part in parts)


@given(whole=wholes, weights=st.one_of(weight_lists, exact_weight_lists))
def test_allocate_is_proportional_within_one_unit(whole: int, weights: list[int]) -> None:
    for index, part in enumerate(allocate(whole, weights)):
        share = exact_share(whole, weights, index)
        assert math.floor(share) <= part <= math.ceil(share)
        assert abs(part - share) < 1


@given(whole=wholes, weights=weight_lists)
def test_allocate_gives_leftover_units_to_the_largest_remainders(whole: int, weights: list[int]) -> None:
    parts = allocate(whole, weights)
    remainders = [exact_share(whole, weights, i) - math.floor(exact_share(whole, weights, i))
                  for i in range(len(weights))]
    rounded_up = [i for i, part in enumerate(parts) if part > math.floor(exact_share(whole, weights, i))]
    kept_down = [i for i in range(len(parts)) if i not in rounded_up and remainders[i] > 0]
    for up in rounded_up:
        for down in kept_down:
            assert remainders[up] > remainders[down] or (remainders[up] == remainders[down] and up < down)


@given(whole=wholes, weights=st.one_of(weight_lists, exact_weight_lists))
def test_allocate_is_deterministic_and_commutes_with_negation(whole: int, weights: list[int]) -> None:
    parts = allocate(whole, weights)
    assert allocate(whole, list(weights)) == parts
    assert allocate(-whole, weights) == [-part for part in parts]


@given(minor=st.integers(min_value=-(10**15), max_value=10**15), weights=weight_lists, code=codes)
def test_money_allocate_keeps_the_currency(minor: int, weights: list[int], code: str) -> None:
    parts = Money(minor, code).allocate(weights)
    assert {part.currency for part in parts} == {code}
    assert sum(part.minor for part in parts) == minor


@pytest.mark.parametrize(("whole", "weights", "parts"), [
    (100, [1, 1, 1], [34, 33, 33]),
    (1, [1, 1, 1], [1, 0, 0]),
    (10, [1, 2], [3, 7]),
    (-10, [1, 2], [-3, -7]),
    (10000, [10, 5, 85], [1000, 500, 8500]),
    (5, [0, 1], [0, 5]),
    (7, [Decimal("0.5"), Fraction(1, 4), 0], [5, 2, 0]),
])
def test_allocate_examples(whole: int, weights: list[int | Decimal | Fraction], parts: list[int]) -> None:
    assert allocate(whole, weights) == parts


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_empty_negative_or_all_zero_weights(weights: list[int]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        allocate(10, weights)
    assert caught.value.code == "invalid_weights"


@pytest.mark.parametrize(("whole", "weights"), [(10, [0.5, 0.5]), (10, [True, 1]), (10.0, [1]), (True, [1]),
                                                (10, ["1/2", 1])])
def test_allocate_refuses_floats_bools_and_strings(whole: object, weights: list[object]) -> None:
    with pytest.raises(TypeError):
        allocate(whole, weights)  # type: ignore[arg-type]
