"""Watchlist loaders and name matching (pure, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finloop.core.errors import InvalidRequest
from finloop.risk.aml import loaders, screening

SAMPLES = Path(__file__).parent / "samples"


def _names(entries: list[loaders.ListEntry]) -> list[tuple[str, str, str]]:
    return [(e.ref, e.name, e.kind) for e in entries]


def test_ofac_sdn_csv_loader() -> None:
    entries = loaders.parse("ofac_csv", (SAMPLES / "sdn.csv").read_bytes())
    assert _names(entries) == [
        ("ofac:36", "AEROCARIBBEAN AIRLINES", "entity"),
        ("ofac:2674", "PUTIN, Vladimir Vladimirovich", "individual"),
        ("ofac:9001", "MUELLER, Jose Maria", "individual"),
        ("ofac:9002", "GLOBAL SHELL TRADING LLC", "entity"),
        ("ofac:9003", "SEA STAR", "vessel")]
    assert entries[1].aliases == ("PUTIN, Vladimir",) and entries[1].program == "RUSSIA-EO14024"
    assert entries[2].aliases == ("MÜLLER, José",)


def test_un_consolidated_xml_loader() -> None:
    entries = loaders.parse("un_xml", (SAMPLES / "un_consolidated.xml").read_bytes())
    assert _names(entries) == [
        ("un:6908555", "ABDUL RAHMAN KHALIL", "individual"),
        ("un:6908556", "Ιωάννης Παπαδόπουλος", "individual"),
        ("un:110404", "KOREA MINING DEVELOPMENT TRADING CORPORATION", "entity")]
    assert entries[0].aliases == ("Abu Khalil",) and entries[0].program == "Al-Qaida"
    assert entries[2].aliases == ("KOMID",)


@pytest.mark.parametrize(("format", "content", "fragment"), [
    ("ofac_csv", (SAMPLES / "sdn_malformed.csv").read_bytes(), "Line 2: 4 columns"),
    ("ofac_csv", b"x,\"NAME\",-0-,P,-0-,-0-,-0-,-0-,-0-,-0-,-0-,-0-\n", "not a number"),
    ("ofac_csv", b"1,\"\",-0-,P,-0-,-0-,-0-,-0-,-0-,-0-,-0-,-0-\n", "SDN_Name is empty"),
    ("ofac_csv", b"\n\n", "no entries"),
    ("ofac_csv", b"\xff\xfe\x00\x81\x8d\x8f\x90\x9d", "neither UTF-8"),
    ("ofac_csv", b"1,\"" + b"a" * 200_000 + b"\"\n", "Not a CSV file"),
    ("un_xml", (SAMPLES / "un_malformed.xml").read_bytes(), "Not well-formed XML"),
    ("un_xml", b"<OTHER/>", "not CONSOLIDATED_LIST"),
    ("un_xml", b"<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><FIRST_NAME>A</FIRST_NAME></INDIVIDUAL>"
               b"</INDIVIDUALS></CONSOLIDATED_LIST>", "DATAID is missing"),
    ("un_xml", b"<CONSOLIDATED_LIST/>", "no INDIVIDUAL"),
    ("un_xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CONSOLIDATED_LIST>&a;</CONSOLIDATED_LIST>',
     "Forbidden XML"),
])
def test_malformed_files_are_rejected_with_the_reason(format: str, content: bytes, fragment: str) -> None:
    with pytest.raises(loaders.WatchlistRejected) as caught:
        loaders.parse(format, content)
    assert fragment in caught.value.message and caught.value.code == "watchlist_rejected"


def test_unknown_format() -> None:
    with pytest.raises(InvalidRequest) as caught:
        loaders.parse("pdf", b"x")
    assert caught.value.param == "format"


def test_normalisation_strips_accents_and_transliterates() -> None:
    assert screening.normalize("PUTIN, Vladimir  Vladimirovich") == "putin vladimir vladimirovich"
    assert screening.normalize("Владимир Путин") == "vladimir putin"
    assert screening.normalize("Ιωάννης Παπαδόπουλος") == "ioannis papadopoulos"
    assert screening.normalize("MÜLLER, José") == "muller jose"
    assert screening.normalize("Straße") == "strasse"
    assert screening.normalize("!!!") == ""
    assert screening.blocks("putin vladimir v") == {"put", "vla"}


ENTRY = [screening.normalize("PUTIN, Vladimir Vladimirovich"), screening.normalize("PUTIN, Vladimir")]


@pytest.mark.parametrize(("query", "hit"), [
    ("Vladimir Putin", True),                # order and the extra patronymic do not matter
    ("Владимир Путин", True),                # Cyrillic
    ("Vladimir Vladimirovich Putin", True),
    ("Vladmir Puttin", True),                # typos
    ("Vladimir Petrov", False),              # a different surname
    ("Vladimir", False),                     # one common first name alone
    ("Ivan Ivanov", False),
])
def test_hits_and_near_misses(query: str, hit: bool) -> None:
    score, _ = screening.best_score(screening.normalize(query), ENTRY)
    assert (score >= screening.DEFAULT_THRESHOLD) is hit, score


def test_rank_orders_by_score_and_applies_the_threshold() -> None:
    candidates = [("e1", ENTRY), ("e2", [screening.normalize("Vladimir Putinov")]), ("e3", ["ivan ivanov"])]
    ranked = screening.rank("vladimir putin", candidates, 88)
    assert [r[0] for r in ranked] == ["e1", "e2"] and ranked[0][1] == 100.0
    assert screening.rank("vladimir putin", candidates, 100) == [("e1", 100.0, "putin vladimir")]
