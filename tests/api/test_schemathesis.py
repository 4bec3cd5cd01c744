"""Schemathesis over the whole OpenAPI spec: generated requests, valid and invalid, never get a 5xx, and
every response matches the schema the spec declares for its status (errors included).

The run uses schemathesis' own engine (its coverage phase of boundary values, then fuzzing), as its
CLI would; its pytest integration (``from_fixture``) does not run under the installed pytest. Requests
carry a seeded tenant's admin key, so they reach the handlers instead of stopping at the auth check;
ids in paths and bodies are often drawn from the seeded accounts, entries and holds, so that requests
get past the lookups into the ledger; and strings and integers are sometimes replaced by values known
to break careless code (NUL, instants at the ends of the calendar, integers past 64 bits).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events

from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from tests.conftest import TenantHandle

pytestmark = pytest.mark.slow

#: Fuzzed examples per operation (after the coverage phase): about 2,000 requests per backend in all.
MAX_EXAMPLES = 8

NASTY_STRINGS = ["a\x00b", "\x00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01",
                 "9999-12-31", "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHwx", "-1", "1e400", "../../etc/passwd"]
NASTY_INTEGERS = [2**63, -(2**63) - 1, 2**64, 10**30, -1, 0]

#: Where a seeded id may stand in for a generated one.
SEEDED_PARAMETERS = {
    "path.account_id": "accounts", "path.entry_id": "entries", "path.hold_id": "holds",
    "query.account_id": "accounts", "query.batch_id": "batches",
    "body.debit_account_id": "accounts", "body.credit_account_id": "accounts",
    "body.postings[*].account_id": "accounts",
    "body.transfers[*].debit_account_id": "accounts", "body.transfers[*].credit_account_id": "accounts",
    "body.transfers[*].postings[*].account_id": "accounts",
}


def seed(db: Database, tenant: TenantHandle) -> dict[str, list[str]]:
    """Accounts with money on them, an entry in a batch, and pending holds."""
    with db.uow() as uow:
        accounts = [
            service.create_account(uow, tenant.id, code="assets:bank:main", type=AccountType.ASSET,
                                   currency_code="CNY").id,
            service.create_account(uow, tenant.id, code="liabilities:merchant:M1:available",
                                   type=AccountType.LIABILITY, currency_code="CNY",
                                   balance_rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS).id,
            service.create_account(uow, tenant.id, code="income:fees", type=AccountType.INCOME,
                                   currency_code="CNY").id,
        ]
        batch = uow.ids.new("batch")
        opening = TransferSpec.simple("seed", accounts[0], accounts[1], 10_000, "CNY")
        entry = service.post_transfers(uow, tenant.id, [opening], batch_id=batch)[0].id
        holds = [service.create_hold(uow, tenant.id, key=f"seed-hold-{i}", debit_account_id=accounts[1],
                                     credit_account_id=accounts[0], amount=100, currency_code="CNY",
                                     timeout_seconds=3_600)[0].id for i in range(3)]
        uow.commit()
    return {"accounts": accounts, "entries": [entry], "holds": holds, "batches": [batch]}


def run_config(tenant: TenantHandle, ids: dict[str, list[str]]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": 20260302,
        "headers": tenant.headers,
        "dictionaries": {
            **{name: {"values": values} for name, values in ids.items()},
            "nasty_strings": {"values": NASTY_STRINGS},
            "nasty_integers": {"values": NASTY_INTEGERS},
        },
        "parameters": {key: {"dictionary": name, "probability": 0.5} for key, name in SEEDED_PARAMETERS.items()},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True},
                   "response_schema_conformance": {"enabled": True}},
        "generation": {
            "max-examples": MAX_EXAMPLES, "deterministic": True,
            "dictionaries": {"string": {"dictionary": "nasty_strings", "probability": 0.1},
                             "integer": {"dictionary": "nasty_integers", "probability": 0.1}},
        },
        "phases": {"examples": {"enabled": False}, "fuzzing": {"enabled": True},
                   "coverage": {"enabled": True, "unexpected-methods": []},
                   "stateful": {"enabled": False}},
    })


def run_schemathesis(app: FastAPI, config: SchemathesisConfig) -> tuple[int, dict[int, int], list[str]]:
    """Run the engine; return how many cases ran, how many responses per status, and what failed."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    cases, statuses, problems = 0, dict[int, int](), list[str]()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    status = interaction.response.status_code
                    statuses[status] = statuses.get(status, 0) + 1
            for nodes in event.recorder.checks.values():
                problems.extend(f"{event.recorder.label}: {node.name}: {node.failure_info}" for node in nodes
                                if node.status != events.Status.SUCCESS)
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    return cases, statuses, problems


def test_generated_requests_get_no_server_error(app: Any, db: Database, tenant: TenantHandle) -> None:
    cases, statuses, problems = run_schemathesis(app, run_config(tenant, seed(db, tenant)))
    assert not problems, "\n".join(dict.fromkeys(problems))
    assert cases > 1_000, cases
    assert not any(status >= 500 for status in statuses), statuses
    # The seeded key and ids let requests through: many succeed, and rules of the books are reached.
    assert sum(count for status, count in statuses.items() if 200 <= status < 300) > 100, statuses
    assert statuses.get(422, 0) > 10 and statuses.get(404, 0) > 10, statuses
