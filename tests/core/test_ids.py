"""Public ids: prefixed, 26-character ULID bodies, sortable by creation time."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.ids import PREFIXES, IdFactory, has_prefix, new_id

ULID_BODY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # Crockford base32: no I, L, O or U


def stepping_clock(times: list[int]) -> Callable[[], int]:
    """A millisecond clock that reads the given values in turn, then repeats the last."""
    readings = iter(times)
    last = [times[0]]

    def now_ms() -> int:
        last[0] = next(readings, last[0])
        return last[0]

    return now_ms


@pytest.mark.parametrize(("kind", "prefix"), sorted(PREFIXES.items()))
def test_every_kind_gets_its_prefix_and_a_ulid_body(kind: str, prefix: str) -> None:
    made = new_id(kind)
    head, _, body = made.partition("_")
    assert head == prefix
    assert ULID_BODY.match(body), made
    assert has_prefix(made, kind)


def test_known_prefixes() -> None:
    assert new_id("entry").startswith("je_")
    assert new_id("account").startswith("acc_")
    assert new_id("hold").startswith("hld_")
    assert not has_prefix(new_id("hold"), "entry")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        new_id("payment_intent_typo")


def test_prefixes_are_distinct() -> None:
    assert len(set(PREFIXES.values())) == len(PREFIXES)


def crockford_value(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value


@given(ms=st.integers(min_value=0, max_value=2**48 - 1), entropy=st.binary(min_size=10, max_size=10))
def test_body_is_ten_characters_of_milliseconds_then_sixteen_of_randomness(ms: int, entropy: bytes) -> None:
    body = IdFactory(now_ms=lambda: ms, entropy=lambda n: entropy[:n]).ulid()
    assert ULID_BODY.match(body)
    assert crockford_value(body[:10]) == ms
    assert crockford_value(body[10:]) == int.from_bytes(entropy, "big")


@given(times=st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=50).map(sorted))
def test_ids_made_later_sort_later(times: list[int]) -> None:
    factory = IdFactory(now_ms=stepping_clock(times))
    made = [factory.new("entry") for _ in times]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_many_ids_in_one_millisecond_are_strictly_increasing() -> None:
    factory = IdFactory(now_ms=lambda: 1_700_000_000_000)
    made = [factory.new("entry") for _ in range(10_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_stay_ordered_when_the_random_part_overflows_within_a_millisecond() -> None:
    factory = IdFactory(now_ms=lambda: 5_000, entropy=lambda n: b"\xff" * n)
    made = [factory.ulid() for _ in range(3)]
    assert made == sorted(made)
    assert len(set(made)) == 3


def test_ids_stay_ordered_when_the_clock_steps_back() -> None:
    factory = IdFactory(now_ms=stepping_clock([10_000, 9_000, 9_500, 10_001]))
    made = [factory.ulid() for _ in range(4)]
    assert made == sorted(made)
    assert len(set(made)) == 4


def test_default_generator_is_monotonic() -> None:
    made = [new_id("entry") for _ in range(2_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_from_separate_generators_sort_by_millisecond() -> None:
    earlier = IdFactory(now_ms=lambda: 1_000, entropy=lambda n: b"\xff" * n).new("entry")
    later = IdFactory(now_ms=lambda: 1_001, entropy=lambda n: bytes(n)).new("entry")
    assert earlier < later
