"""Geo checks: distances, travel speed, impossible travel and its innocent near misses, country codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.db.uow import Database
from finloop.risk.network import geo, replay
from finloop.risk.network import service as network
from tests.conftest import T0, TenantHandle


def test_haversine_on_known_arcs() -> None:
    assert geo.haversine_km((0, 0), (0, 1)) == pytest.approx(111.195, abs=0.01)
    assert geo.haversine_km((0, 0), (90, 0)) == pytest.approx(10007.55, abs=0.1)
    assert geo.haversine_km((10, 20), (10, 20)) == 0.0
    assert geo.distance_km("DE", "DE") == 0.0 and geo.distance_km("DE", "ZZ") is None


@settings(max_examples=100, deadline=None)
@given(a=st.sampled_from(sorted(geo.CENTROIDS)), b=st.sampled_from(sorted(geo.CENTROIDS)))
def test_distances_are_symmetric_and_bounded(a: str, b: str) -> None:
    ab, ba = geo.distance_km(a, b), geo.distance_km(b, a)
    assert ab is not None and ba is not None
    assert ab == pytest.approx(ba) and 0 <= ab <= 20_016  # half the equator
    assert (ab == 0) == (a == b)


def test_every_country_the_simulation_uses_has_a_centroid() -> None:
    from finloop.sim import fraud

    used = {c for c, _, _ in fraud.COUNTRIES} | set(fraud.FOREIGN)
    assert used <= set(geo.CENTROIDS)
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon in geo.CENTROIDS.values())


def test_impossible_travel_and_its_innocent_near_misses() -> None:
    de_fr = geo.distance_km("DE", "FR")
    assert de_fr is not None and 700 < de_fr < 900
    assert geo.travel("DE", T0, "FR", T0 + timedelta(minutes=30))[2] is True  # ~1600 km/h over ~800 km
    km, kmh, impossible = geo.travel("DE", T0, "FR", T0 + timedelta(hours=1))
    assert not impossible and 700 < kmh <= geo.MAX_PLAUSIBLE_KMH  # a flight's speed
    km, kmh, impossible = geo.travel("BE", T0, "NL", T0 + timedelta(minutes=5))
    assert kmh > geo.MAX_PLAUSIBLE_KMH and km < geo.MIN_IMPOSSIBLE_KM and not impossible  # a border, not a flight
    assert geo.travel("CN", T0, "US", T0 + timedelta(hours=14))[2] is False  # an overnight flight
    assert geo.travel("CN", T0, "US", T0 + timedelta(hours=3))[2] is True
    assert geo.travel("US", T0, "US", T0 + timedelta(seconds=1)) == (0, 0, False)
    assert geo.travel("US", T0, "ZZ", T0 + timedelta(seconds=1)) == (0, 0, False)
    assert geo.travel("DE", T0, "FR", T0 - timedelta(minutes=5)) == (0, 0, False)  # older than the last one
    same_second = geo.travel("DE", T0, "FR", T0)
    assert same_second[2] is True and same_second[1] == int(de_fr * 3600)


def test_country_codes_are_normalised() -> None:
    assert geo.country(" cn ") == "CN" and geo.country("USA") is None and geo.country(7) is None
    assert geo.country("") is None and geo.country("1A") is None


def test_mismatches_need_both_countries() -> None:
    memory = replay.MemoryNetwork()
    seen = memory.observe({"customer_id": "c", "ip_country": "CN", "card_country": "us",
                           "customer": {"country": "CN"}}, T0)
    assert seen["geo.ip_card_mismatch"] == 1 and seen["geo.ip_account_mismatch"] == 0
    assert memory.observe({"customer_id": "c", "ip_country": "CN"}, T0)["geo.ip_card_mismatch"] == 0
    assert memory.observe({"customer_id": "c", "card_country": "US"}, T0)["geo.ip_card_mismatch"] == 0
    anonymous = memory.observe({"ip_country": "RU", "card_country": "CN", "customer": {"country": "CN"}}, T0)
    assert anonymous["geo.ip_card_mismatch"] == 1 and anonymous["geo.ip_account_mismatch"] == 1
    assert anonymous["geo.travel_km"] == 0 and anonymous["network.size"] == 0


def test_an_older_event_does_not_move_the_last_location(db: Database, tenant: TenantHandle) -> None:
    memory = replay.MemoryNetwork()
    stream = [(T0, "CN"), (T0 + timedelta(hours=10), "DE"), (T0 + timedelta(hours=1), "US"),
              (T0 + timedelta(hours=11), "FR")]
    with db.uow() as uow:
        for at, country in stream:
            event = {"customer_id": "c1", "ip_country": country}
            assert network.observe(uow, tenant.id, event, at=at) == memory.observe(event, at)
        uow.commit()
    last = memory.observe({"customer_id": "c1", "ip_country": "FR"}, T0 + timedelta(hours=12))
    assert last["geo.travel_km"] == 0  # from FR (11 h), not from the late US event
