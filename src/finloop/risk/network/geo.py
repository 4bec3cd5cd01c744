"""Geo checks: country centroids, great-circle distances and the travel speed between two located events.

Pure: no I/O. A location is a country (ISO 3166-1 alpha-2, from the event's ``ip_country``), placed at its
centroid; the distance between two countries is the haversine distance between their centroids, so travel
inside one country is 0 km and a trip between neighbours is measured centre to centre. Floats here are
distances and speeds (never money); every feature is floored to an integer.
"""

from __future__ import annotations

import math
from datetime import datetime

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088
#: A move faster than this between two located events is not done by plane (airliners cruise at ~900 km/h).
MAX_PLAUSIBLE_KMH = 900
#: ... unless it is shorter than this: neighbouring countries' centroids are close, and an IP's country
#: near a border (or a VPN exit next door) must not look like a flight.
MIN_IMPOSSIBLE_KM = 500
#: The elapsed time is at least one second (two events in the same second still have a finite speed).
MIN_ELAPSED_SECONDS = 1

#: Approximate geographic centroids (latitude, longitude in degrees) of ISO 3166-1 alpha-2 countries.
CENTROIDS: dict[str, tuple[float, float]] = {
    "AE": (23.4, 53.8), "AF": (33.9, 67.7), "AL": (41.2, 20.2), "AM": (40.1, 45.0), "AO": (-11.2, 17.9),
    "AR": (-38.4, -63.6), "AT": (47.5, 14.6), "AU": (-25.3, 133.8), "AZ": (40.1, 47.6), "BA": (43.9, 17.7),
    "BD": (23.7, 90.4), "BE": (50.5, 4.5), "BG": (42.7, 25.5), "BH": (26.0, 50.6), "BN": (4.5, 114.7),
    "BO": (-16.3, -63.6), "BR": (-14.2, -51.9), "BW": (-22.3, 24.7), "BY": (53.7, 28.0), "CA": (56.1, -106.3),
    "CH": (46.8, 8.2), "CI": (7.5, -5.5), "CL": (-35.7, -71.5), "CM": (7.4, 12.4), "CN": (35.9, 104.2),
    "CO": (4.6, -74.3), "CR": (9.7, -83.8), "CU": (21.5, -77.8), "CY": (35.1, 33.4), "CZ": (49.8, 15.5),
    "DE": (51.2, 10.5), "DK": (56.3, 9.5), "DO": (18.7, -70.2), "DZ": (28.0, 1.7), "EC": (-1.8, -78.2),
    "EE": (58.6, 25.0), "EG": (26.8, 30.8), "ES": (40.5, -3.7), "ET": (9.1, 40.5), "FI": (61.9, 25.7),
    "FJ": (-17.7, 178.1), "FR": (46.2, 2.2), "GB": (55.4, -3.4), "GE": (42.3, 43.4), "GH": (7.9, -1.0),
    "GR": (39.1, 21.8), "GT": (15.8, -90.2), "HK": (22.4, 114.1), "HR": (45.1, 15.2), "HU": (47.2, 19.5),
    "ID": (-0.8, 113.9), "IE": (53.4, -8.2), "IL": (31.0, 34.9), "IN": (20.6, 79.0), "IQ": (33.2, 43.7),
    "IR": (32.4, 53.7), "IS": (65.0, -19.0), "IT": (41.9, 12.6), "JM": (18.1, -77.3), "JO": (30.6, 36.2),
    "JP": (36.2, 138.3), "KE": (0.0, 37.9), "KG": (41.2, 74.8), "KH": (12.6, 105.0), "KR": (35.9, 127.8),
    "KW": (29.3, 47.5), "KZ": (48.0, 66.9), "LA": (19.9, 102.5), "LB": (33.9, 35.9), "LK": (7.9, 80.8),
    "LT": (55.2, 23.9), "LU": (49.8, 6.1), "LV": (56.9, 24.6), "LY": (26.3, 17.2), "MA": (31.8, -7.1),
    "MD": (47.4, 28.4), "ME": (42.7, 19.4), "MG": (-18.8, 46.9), "MK": (41.6, 21.7), "MM": (21.9, 96.0),
    "MN": (46.9, 103.8), "MO": (22.2, 113.5), "MT": (35.9, 14.4), "MU": (-20.3, 57.6), "MV": (3.2, 73.2),
    "MX": (23.6, -102.6), "MY": (4.2, 102.0), "MZ": (-18.7, 35.5), "NA": (-23.0, 18.5), "NG": (9.1, 8.7),
    "NL": (52.1, 5.3), "NO": (60.5, 8.5), "NP": (28.4, 84.1), "NZ": (-40.9, 174.9), "OM": (21.5, 55.9),
    "PA": (8.5, -80.8), "PE": (-9.2, -75.0), "PG": (-6.3, 144.0), "PH": (12.9, 121.8), "PK": (30.4, 69.3),
    "PL": (51.9, 19.1), "PR": (18.2, -66.6), "PT": (39.4, -8.2), "PY": (-23.4, -58.4), "QA": (25.4, 51.2),
    "RO": (45.9, 25.0), "RS": (44.0, 21.0), "RU": (61.5, 105.3), "RW": (-1.9, 29.9), "SA": (23.9, 45.1),
    "SD": (12.9, 30.2), "SE": (60.1, 18.6), "SG": (1.35, 103.8), "SI": (46.2, 15.0), "SK": (48.7, 19.7),
    "SN": (14.5, -14.5), "TH": (15.9, 101.0), "TJ": (38.9, 71.3), "TM": (39.0, 59.6), "TN": (33.9, 9.5),
    "TR": (39.0, 35.2), "TW": (23.7, 121.0), "TZ": (-6.4, 34.9), "UA": (48.4, 31.2), "UG": (1.4, 32.3),
    "US": (37.1, -95.7), "UY": (-32.5, -55.8), "UZ": (41.4, 64.6), "VE": (6.4, -66.6), "VN": (14.1, 108.3),
    "ZA": (-30.6, 22.9), "ZM": (-13.1, 27.8), "ZW": (-19.0, 29.2),
}


def country(value: object) -> str | None:
    """The value as an ISO 3166-1 alpha-2 code in capitals (``" cn"`` is ``CN``), or None when it is not two
    letters."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if len(code) == 2 and code.isascii() and code.isalpha() else None


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (latitude, longitude) points in degrees."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km(from_country: str, to_country: str) -> float | None:
    """Centroid to centroid; None when either country is not in ``CENTROIDS``."""
    a, b = CENTROIDS.get(from_country), CENTROIDS.get(to_country)
    if a is None or b is None:
        return None
    return 0.0 if from_country == to_country else haversine_km(a, b)


def travel(from_country: str, from_at: datetime, to_country: str, to_at: datetime) -> tuple[int, int, bool]:
    """(km, km/h, impossible) of a move between two located events, floored to integers. Impossible: faster
    than ``MAX_PLAUSIBLE_KMH`` over more than ``MIN_IMPOSSIBLE_KM``. An unknown country, or an event before
    the previous one, is no move (0, 0, False)."""
    km = distance_km(from_country, to_country)
    if km is None or to_at < from_at or km == 0.0:
        return 0, 0, False
    seconds = max(MIN_ELAPSED_SECONDS, (to_at - from_at).total_seconds())
    whole_km = int(km)
    kmh = int(km * 3600 / seconds)
    return whole_km, kmh, kmh > MAX_PLAUSIBLE_KMH and whole_km > MIN_IMPOSSIBLE_KM
