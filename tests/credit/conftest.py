"""Credit fixtures: models trained once per session (German data, simulated platform applicants), a sandbox
bureau that does not sleep, and helpers that make applicants and install champion models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from finloop.credit import bureau, registry
from finloop.credit import service as credit
from finloop.credit.bureau.sandbox import SandboxBureau
from finloop.credit.domain import ModelStatus
from finloop.credit.models import Applicant, CreditModel
from finloop.credit.scorecard import Trained, german_dataset, platform_dataset, train
from finloop.db.uow import Database
from finloop.payments import service as payments

#: Training the scorecard and GBM on the simulated platform: small enough to keep the suite fast.
PLATFORM_ROWS = 2000


@pytest.fixture(scope="session")
def german() -> Trained:
    return train(german_dataset(), seed=1)


@pytest.fixture(scope="session")
def platform() -> Trained:
    return train(platform_dataset(PLATFORM_ROWS, seed=3), seed=1, rounds=60)


@pytest.fixture(autouse=True)
def sandbox_bureau() -> Iterator[SandboxBureau]:
    sandbox = SandboxBureau(seed=7, sleep=lambda seconds: None)
    bureau.use(sandbox)
    registry.forget()
    credit.forget_keys()
    yield sandbox
    bureau.use(None)
    registry.forget()
    credit.forget_keys()


@dataclass
class Party:
    customer_id: str
    applicant_id: str


def make_applicant(db: Database, tenant_id: str, reference: str, *, national_id: str = "110101199003070011",
                   phone: str | None = "+86 138 0013 8000", bank_account: str | None = "6222020200112233445",
                   income: int = 1_200_000, employment: str = "employed") -> Party:
    with db.uow() as uow:
        customer = payments.create_customer(uow, tenant_id, reference=reference)
        applicant = credit.create_applicant(uow, tenant_id, party_kind="customer", party_id=customer.id,
                                            declared_income_amount=income, currency="CNY", employment=employment,
                                            national_id=national_id, phone=phone, bank_account=bank_account,
                                            actor="test")
        uow.commit()
    return Party(customer.id, applicant.id)


def install(db: Database, tenant_id: str, trained: Trained, *, name: str = "applicant",
            challenger: bool = True) -> tuple[CreditModel, CreditModel]:
    """Register a training run and make its scorecard the champion (and its GBM the challenger)."""
    with db.uow() as uow:
        card, gbm = registry.register(uow, tenant_id, trained, name=name, actor="test")
        registry.promote(uow, tenant_id, card.id, to=ModelStatus.CHAMPION, actor="test")
        if challenger:
            registry.promote(uow, tenant_id, gbm.id, to=ModelStatus.CHALLENGER, actor="test")
        uow.commit()
    return card, gbm


def applicant_row(db: Database, tenant_id: str, applicant_id: str) -> Applicant:
    with db.uow(read_only=True) as uow:
        row = credit.get_applicant(uow, tenant_id, applicant_id)
        uow.session.expunge(row)  # keep its loaded values past the end of the unit of work
        return row
