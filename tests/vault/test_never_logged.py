"""A card number (and a CVC) never reaches a log line, a response, the idempotency store or any column.

After tokenizing and revealing through the real app with JSON logging at DEBUG, every text and binary
column of every table in the database is scanned, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from finloop.app import create_app
from finloop.vault import service
from tests.vault.helpers import valid_number

PAN = valid_number("4000056655", 16, fill="7")  # 4000056655777779: a Visa no other test uses
CVC = "9174"
TYPO = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)  # one digit off: fails Luhn


def _cells(value: Any) -> tuple[str, bytes]:
    if value is None:
        return "", b""
    if isinstance(value, bytes | bytearray | memoryview):
        return "", bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value), b""
    return str(value), b""


def scan_database(db) -> list[str]:
    """Every table and column in which a forbidden value appears."""
    token = re.compile(rf"(?<![0-9A-Za-z]){CVC}(?![0-9A-Za-z])")
    found = []
    with db.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        assert {"cards", "vault_keys", "idempotency_keys", "audit_events"} <= set(tables)
        for table in tables:
            result = connection.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    as_text, as_bytes = _cells(value)
                    compact = as_text.replace(" ", "").replace("-", "")
                    if PAN in compact or PAN[:12] in compact or TYPO in compact or token.search(as_text) \
                            or '"cvc"' in as_text or PAN.encode() in as_bytes or TYPO.encode() in as_bytes:
                        found.append(f"{table}.{column}")
    return found


def test_pan_and_cvc_appear_in_no_log_response_or_column(app, db, tenant, capsys):
    settings = app.state.settings.model_copy(update={"log_level": "DEBUG"})
    logged = create_app(settings, database=db, access_log=True)
    spaced = " ".join(PAN[i:i + 4] for i in range(0, 16, 4))
    bodies = []
    with TestClient(logged, raise_server_exceptions=False) as client:
        created = client.post("/v1/cards", headers={**tenant.headers, "Idempotency-Key": "k1"},
                              json={"number": spaced, "exp_month": 1, "exp_year": 2031, "cvc": CVC})
        replayed = client.post("/v1/cards", headers={**tenant.headers, "Idempotency-Key": "k1"},
                               json={"number": spaced, "exp_month": 1, "exp_year": 2031, "cvc": CVC})
        typo = client.post("/v1/cards", headers={**tenant.headers, "Idempotency-Key": "k2"},
                           json={"number": TYPO, "exp_month": 1, "exp_year": 2031, "cvc": CVC})
        bad_cvc = client.post("/v1/cards", headers=tenant.headers,
                              json={"number": PAN, "exp_month": 1, "exp_year": 2031, "cvc": CVC + "x"})
        expired = client.post("/v1/cards", headers=tenant.headers,
                              json={"number": PAN, "exp_month": 1, "exp_year": 2020, "cvc": CVC})
        card_id = created.json()["id"]
        fetched = client.get(f"/v1/cards/{card_id}", headers=tenant.headers)
        bodies = [created, replayed, typo, bad_cvc, expired, fetched]
        # The payments service reveals a card for its connector call in its own unit of work.
        with db.uow(read_only=True) as uow:
            card = service.reveal_card(uow, tenant.id, card_id)
        assert card.number == PAN
        service_log = f"{card!r} {card}"
    assert [r.status_code for r in bodies] == [201, 201, 400, 400, 400, 200]
    assert typo.json()["error"]["code"] == "invalid_card_number"
    assert bad_cvc.json()["error"]["code"] == "invalid_cvc" and expired.json()["error"]["code"] == "card_expired"
    logs = capsys.readouterr().err
    assert '"event": "request"' in logs or '"event":"request"' in logs  # the capture works
    everything = logs + service_log + "".join(r.text + json.dumps(dict(r.headers)) for r in bodies)
    compact = everything.replace(" ", "").replace("-", "")
    assert PAN not in compact and TYPO not in compact and PAN[:12] not in compact
    assert not re.search(rf"(?<![0-9A-Za-z]){CVC}(?![0-9A-Za-z])", everything)
    assert scan_database(db) == []


def test_the_scan_finds_a_planted_number(db, tenant):
    # The scanner is the test: prove it would catch a PAN in a text column and a CVC in a JSON one.
    from finloop.audit import service as audit

    with db.uow() as uow:
        audit.record(uow, tenant.id, actor="test", action="planted", object_type="x", after={"cvc": "0"})
        audit.record(uow, tenant.id, actor=f"x {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}", action="planted",
                     object_type="x", after={"note": f"code {CVC}."})
        uow.commit()
    assert sorted(set(scan_database(db))) == ["audit_events.actor", "audit_events.after"]
