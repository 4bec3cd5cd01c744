from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.vault.domain import (
    Brand,
    check_expiry,
    detect_brand,
    fingerprint,
    luhn_check_digit,
    luhn_valid,
    mask_pan,
    normalize_number,
)
from tests.vault.helpers import valid_number

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
bodies = st.text(alphabet="0123456789", min_size=11, max_size=18)


@given(bodies)
def test_any_number_with_its_check_digit_passes(body):
    number = body + str(luhn_check_digit(body))
    assert luhn_valid(number)
    assert normalize_number(number) == number


@given(bodies, st.data())
def test_changing_any_single_digit_fails_luhn(body, data):
    number = body + str(luhn_check_digit(body))
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    changed = number[:position] + replacement + number[position + 1:]
    assert not luhn_valid(changed)
    with pytest.raises(InvalidRequest) as caught:
        normalize_number(changed)
    assert caught.value.code == "invalid_card_number" and caught.value.param == "number"
    assert changed not in caught.value.message


@pytest.mark.parametrize("number", ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117",
                                   "3530111333300000", "36227206271667", "6200000000000005"])
def test_well_known_test_cards_pass(number):
    assert luhn_valid(number)


def test_spaces_and_dashes_are_stripped():
    assert normalize_number("4242 4242-4242 4242") == "4242424242424242"


@pytest.mark.parametrize("number", [
    valid_number("4", 11),           # too short
    valid_number("4", 20),           # too long
    "4242 4242 4242 424x",
    "４２４２４２４２４２４２４２４２",     # full-width digits: isdigit() but not card digits
    "4242.4242.4242.4242",
    "",
    "4242424242424241",              # Luhn
])
def test_bad_numbers_are_invalid_card_number_without_echo(number):
    with pytest.raises(InvalidRequest) as caught:
        normalize_number(number)
    assert caught.value.code == "invalid_card_number" and caught.value.param == "number"
    digits = number.replace(" ", "").replace("-", "")
    assert not digits or digits not in caught.value.message


@pytest.mark.parametrize(("prefix", "length", "brand"), [
    ("4", 16, Brand.VISA), ("4", 13, Brand.VISA), ("4", 19, Brand.VISA),
    ("51", 16, Brand.MASTERCARD), ("55", 16, Brand.MASTERCARD),
    ("2221", 16, Brand.MASTERCARD), ("2720", 16, Brand.MASTERCARD), ("2721", 16, Brand.UNKNOWN),
    ("34", 15, Brand.AMEX), ("37", 15, Brand.AMEX),
    ("6011", 16, Brand.DISCOVER), ("644", 16, Brand.DISCOVER), ("649", 16, Brand.DISCOVER),
    ("65", 16, Brand.DISCOVER), ("622126", 16, Brand.DISCOVER), ("622925", 16, Brand.DISCOVER),
    ("622125", 16, Brand.UNIONPAY), ("622926", 16, Brand.UNIONPAY), ("62", 19, Brand.UNIONPAY),
    ("81", 16, Brand.UNIONPAY),
    ("3528", 16, Brand.JCB), ("3589", 16, Brand.JCB), ("3527", 16, Brand.UNKNOWN),
    ("300", 14, Brand.DINERS), ("305", 14, Brand.DINERS), ("3095", 14, Brand.DINERS),
    ("36", 14, Brand.DINERS), ("38", 16, Brand.DINERS), ("39", 16, Brand.DINERS),
    ("5018", 12, Brand.MAESTRO), ("6304", 16, Brand.MAESTRO), ("6759", 19, Brand.MAESTRO),
    ("6763", 16, Brand.MAESTRO),
    ("2200", 16, Brand.MIR), ("2204", 16, Brand.MIR), ("2205", 16, Brand.UNKNOWN),
    ("1", 16, Brand.UNKNOWN), ("9", 16, Brand.UNKNOWN), ("56", 16, Brand.UNKNOWN),
])
def test_brand_detection_by_iin_range(prefix, length, brand):
    number = valid_number(prefix, length)
    assert normalize_number(number) == number
    assert detect_brand(number) is brand


def test_mask_shows_only_the_last_four():
    assert mask_pan("4242424242424242") == "************4242"
    assert mask_pan("378282246310005") == "***********0005"


@pytest.mark.parametrize(("month", "year"), [(3, 2026), (12, 2026), (1, 2027), (12, 2076)])
def test_expiry_this_month_or_later_is_accepted(month, year):
    check_expiry(month, year, NOW)


@pytest.mark.parametrize(("month", "year", "code", "param"), [
    (2, 2026, "card_expired", "exp_year"),
    (12, 2025, "card_expired", "exp_year"),
    (0, 2030, "invalid_expiry", "exp_month"),
    (13, 2030, "invalid_expiry", "exp_month"),
    (True, 2030, "invalid_expiry", "exp_month"),
    (5, 30, "invalid_expiry", "exp_year"),
    (5, 2077, "invalid_expiry", "exp_year"),
])
def test_bad_or_past_expiry_is_refused(month, year, code, param):
    with pytest.raises(InvalidRequest) as caught:
        check_expiry(month, year, NOW)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_fingerprint_is_stable_per_tenant_and_differs_across_tenants_and_keys():
    key, other_key = b"k" * 32, b"j" * 32
    number = "4242424242424242"
    first = fingerprint(key, "ten_A", number)
    assert first == fingerprint(key, "ten_A", number) and len(first) == 32
    assert first != fingerprint(key, "ten_B", number)
    assert first != fingerprint(other_key, "ten_A", number)
    assert first != fingerprint(key, "ten_A", "5555555555554444")
    assert number not in first
