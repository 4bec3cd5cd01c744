"""Watchlist loaders: the OFAC SDN CSV (``sdn.csv``) and the UN Security Council consolidated list XML.

Both return :class:`ListEntry` values; a file that is not in the format raises
:class:`WatchlistRejected` (an ``InvalidRequest``, code ``watchlist_rejected``, a 400) naming the line or
element and the reason. The XML is parsed with ``defusedxml`` (no entities, no external references).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from finloop.core.errors import InvalidRequest

MAX_NAME = 300
MAX_ALIASES = 50
FORMATS = ("ofac_csv", "un_xml")

#: sdn.csv has no header; these are its twelve columns in order.
OFAC_COLUMNS = ("ent_num", "SDN_Name", "SDN_Type", "Program", "Title", "Call_Sign", "Vess_type", "Tonnage", "GRT",
                "Vess_flag", "Vess_owner", "Remarks")
OFAC_TYPES = {"individual": "individual", "-0-": "entity", "": "entity", "vessel": "vessel", "aircraft": "aircraft"}


class WatchlistRejected(InvalidRequest):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="watchlist_rejected", param="file")


@dataclass(frozen=True, slots=True)
class ListEntry:
    ref: str
    name: str
    kind: str  # individual | entity | vessel | aircraft
    program: str
    aliases: tuple[str, ...] = ()


def _text(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return content.decode("cp1252")
        except UnicodeDecodeError:
            raise WatchlistRejected("The file is neither UTF-8 nor Windows-1252 text.") from None


def _clean(value: str | None) -> str:
    text = (value or "").replace("\x00", "").strip()
    return "" if text == "-0-" else " ".join(text.split())[:MAX_NAME]


def parse_ofac_csv(content: bytes) -> list[ListEntry]:
    """``sdn.csv``: 12 columns, no header, ``-0-`` for empty; names ``LAST, First``. ``a.k.a.`` names given in
    Remarks (``a.k.a. 'X'; a.k.a. 'Y'``) become aliases."""
    text = _text(content)
    entries: list[ListEntry] = []
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise WatchlistRejected(f"Not a CSV file: {error}.") from None
    for line_no, row in enumerate(rows, start=1):
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].strip() == "\x1a":
            continue  # blank lines and the DOS end-of-file marker OFAC ships
        if len(row) != len(OFAC_COLUMNS):
            raise WatchlistRejected(f"Line {line_no}: {len(row)} columns, sdn.csv has {len(OFAC_COLUMNS)}.")
        ref = row[0].strip()
        if not ref.isdigit():
            raise WatchlistRejected(f"Line {line_no}: ent_num {ref[:20]!r} is not a number.")
        name = _clean(row[1])
        if not name:
            raise WatchlistRejected(f"Line {line_no}: SDN_Name is empty.")
        kind = OFAC_TYPES.get(_clean(row[2]).lower() or "", "entity")
        aliases = []
        for part in row[11].split(";"):
            part = part.strip()
            if part.lower().startswith(("a.k.a.", "f.k.a.")):
                alias = _clean(part[6:].strip(" '\"."))
                if alias:
                    aliases.append(alias)
        entries.append(ListEntry(ref=f"ofac:{ref}", name=name, kind=kind, program=_clean(row[3])[:100],
                                 aliases=tuple(aliases[:MAX_ALIASES])))
    if not entries:
        raise WatchlistRejected("The file has no entries.")
    return entries


def _child(element: Element, tag: str) -> str:
    found = element.find(tag)
    return _clean(found.text if found is not None else None)


def parse_un_xml(content: bytes) -> list[ListEntry]:
    """The UN consolidated list: ``CONSOLIDATED_LIST/INDIVIDUALS/INDIVIDUAL`` (DATAID, FIRST_NAME …
    FOURTH_NAME, UN_LIST_TYPE, INDIVIDUAL_ALIAS/ALIAS_NAME) and ``ENTITIES/ENTITY`` (FIRST_NAME,
    ENTITY_ALIAS/ALIAS_NAME)."""
    try:
        root = SafeET.fromstring(content)
    except DefusedXmlException as error:
        raise WatchlistRejected(f"Forbidden XML construct: {type(error).__name__}.") from None
    except SafeET.ParseError as error:
        raise WatchlistRejected(f"Not well-formed XML: {error}.") from None
    if root.tag != "CONSOLIDATED_LIST":
        raise WatchlistRejected(f"The root element is {root.tag[:40]!r}, not CONSOLIDATED_LIST.")
    entries: list[ListEntry] = []
    for tag, kind, alias_tag in (("INDIVIDUALS/INDIVIDUAL", "individual", "INDIVIDUAL_ALIAS"),
                                 ("ENTITIES/ENTITY", "entity", "ENTITY_ALIAS")):
        for index, item in enumerate(root.findall(tag), start=1):
            ref = _child(item, "DATAID")
            if not ref:
                raise WatchlistRejected(f"{tag} #{index}: DATAID is missing.")
            parts = [_child(item, t) for t in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")]
            name = " ".join(p for p in parts if p)[:MAX_NAME]
            if not name:
                raise WatchlistRejected(f"{tag} #{index} (DATAID {ref[:20]}): FIRST_NAME is missing.")
            aliases = [a for a in (_child(alias, "ALIAS_NAME") for alias in item.findall(alias_tag)) if a]
            program = _child(item, "UN_LIST_TYPE")[:100]
            entries.append(ListEntry(ref=f"un:{ref[:30]}", name=name, kind=kind, program=program,
                                     aliases=tuple(aliases[:MAX_ALIASES])))
    if not entries:
        raise WatchlistRejected("The file has no INDIVIDUAL or ENTITY entries.")
    return entries


def parse(format: str, content: bytes) -> list[ListEntry]:
    if format == "ofac_csv":
        return parse_ofac_csv(content)
    if format == "un_xml":
        return parse_un_xml(content)
    raise InvalidRequest(f"Unknown watchlist format; one of {', '.join(FORMATS)}.", code="invalid_format",
                         param="format")
