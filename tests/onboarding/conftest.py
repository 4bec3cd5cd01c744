"""Onboarding fixtures: a sandbox provider without latency in front of every tenant, a merchant, a customer and
a promoter to onboard, and the sample OFAC list for screening hits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from finloop.db.uow import Database
from finloop.onboarding.connectors.registry import use_verifier
from finloop.onboarding.connectors.sandbox import SandboxVerifier
from finloop.payments import service as payments
from finloop.risk.aml import service as aml
from finloop.splits import service as splits
from tests.conftest import TenantHandle

SAMPLES = Path(__file__).parent.parent / "risk" / "samples"


@pytest.fixture
def verifier() -> Iterator[SandboxVerifier]:
    sandbox = SandboxVerifier(latency_ms=(0, 0))
    with use_verifier(sandbox):
        yield sandbox


@dataclass
class Parties:
    tenant: TenantHandle
    merchant_id: str
    customer_id: str
    promoter_id: str


def make_parties(db: Database, tenant: TenantHandle, suffix: str = "1") -> Parties:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference=f"M{suffix}", name="Tea House")
        customer = payments.create_customer(uow, tenant.id, reference=f"C{suffix}")
        promoter = splits.create_promoter(uow, tenant.id, reference=f"P{suffix}", name="Tea blogger")
        uow.commit()
    return Parties(tenant, merchant.id, customer.id, promoter.id)


@pytest.fixture
def parties(db: Database, tenant: TenantHandle) -> Parties:
    return make_parties(db, tenant)


def import_sdn(db: Database, tenant_id: str) -> None:
    with db.uow() as uow:
        aml.import_watchlist(uow, tenant_id, format="ofac_csv", content=(SAMPLES / "sdn.csv").read_bytes(),
                             actor="test")
        uow.commit()
