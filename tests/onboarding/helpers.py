"""Verified parties for any test that pays out: the real onboarding flow through the sandbox provider (no
latency), with identifiers derived from the party id so two parties never look like duplicates."""

from __future__ import annotations

import hashlib
from typing import Any

from finloop.db.uow import Database
from finloop.onboarding import flows
from finloop.onboarding import service as onboarding
from finloop.onboarding.connectors.registry import use_verifier
from finloop.onboarding.connectors.sandbox import SandboxVerifier


def identifier(party_id: str, prefix: str = "T") -> str:
    """A number of the party's own that triggers no sandbox failure (it ends in 5)."""
    digits = str(int(hashlib.sha256(party_id.encode()).hexdigest()[:12], 16))[:10]
    return f"{prefix}{digits}5"


def individual(party_id: str, **changes: Any) -> dict[str, Any]:
    return {"legal_name": "Li Wei", "date_of_birth": "1990-05-17", "nationality": "CN",
            "national_id": identifier(party_id, "N"), "document_type": "passport",
            "document_number": identifier(party_id, "E"), "phone": "+8613800138000", **changes}


def business(party_id: str, **changes: Any) -> dict[str, Any]:
    return {"registered_name": "Tea House Ltd", "registration_number": identifier(party_id, "R"), "country": "CN",
            "business_type": "retail",
            "beneficial_owners": [{"name": "Wang Fang", "date_of_birth": "1975-01-02", "nationality": "CN",
                                   "ownership_percent": 60}], **changes}


def verify_party(db: Database, tenant_id: str, party_kind: str, party_id: str) -> str:
    """Onboard the party (merchants as businesses, customers and promoters as individuals); it must come out
    approved. Returns the profile id."""
    data: dict[str, Any] = {"business": business(party_id)} if party_kind == "merchant" else \
        {"individual": individual(party_id)}
    with use_verifier(SandboxVerifier(latency_ms=(0, 0))):
        profile_id = flows.submit(db, tenant_id, party_kind=str(party_kind), party_id=party_id, actor="test",
                                  **data)
    with db.uow(read_only=True) as uow:
        profile = onboarding.get_profile(uow, tenant_id, profile_id)
        assert profile.status == "approved", (profile.status, profile.review_reasons)
    return profile_id
