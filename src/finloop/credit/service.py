"""Credit use cases in one transaction each: applicants, consents, bureau report records and rating policy.
Every function takes a unit of work and never commits.

Invariants owned here:
- a national id, phone number or bank account is validated, then written only sealed by the vault (the
  associated data names the tenant, the applicant and the field, so a ciphertext copied to another row does
  not open), beside its keyed blind index (HMAC-SHA256 under a per-tenant key derived from the vault's
  fingerprint key) and its last four characters; nothing here logs or returns one in clear;
- two applicants of a tenant with one national id, phone or bank account are both flagged
  (``duplicate_national_id``, ``shared_phone``, ``shared_bank_account``); lookups go through the index;
- a bureau pull needs a consent of the applicant that covers ``bureau_report``, was given, has not expired
  and was not revoked, at the time of the pull: otherwise it is refused (409 ``consent_required``) and
  nothing is written;
- a pull is recorded (pending) before the bureau is called and completed or failed after, each in its own
  transaction (``flows.pull_report``); a report is completed or failed once;
- consents, applicants and rating-band changes are audited, without personal data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, ExternalServiceError, InvalidRequest, NotFound
from finloop.core.money import check_amount, is_currency
from finloop.core.text import check_account_number, check_text
from finloop.credit import bureau
from finloop.credit.bureau.base import BureauRequest, BureauResult
from finloop.credit.domain import (
    DEFAULT_BANDS,
    Employment,
    PartyKind,
    RatingBand,
    bands_json,
    check_bands,
    last4,
    normalize_national_id,
    normalize_phone,
)
from finloop.credit.models import Applicant, BureauReport, Consent, RatingPolicy
from finloop.db.uow import UnitOfWork

MAX_INCOME = 10**13
DEFAULT_CONSENT_DAYS = 90
MAX_CONSENT_DAYS = 366
SEAL_PREFIX = "credit.applicant"


class ConsentPurpose(StrEnum):
    CREDIT_ASSESSMENT = "credit_assessment"
    ACCOUNT_MONITORING = "account_monitoring"


class ConsentScope(StrEnum):
    BUREAU_REPORT = "bureau_report"
    BEHAVIOUR_DATA = "behaviour_data"


class ConsentChannel(StrEnum):
    APP = "app"
    WEB = "web"
    PAPER = "paper"
    CALL = "call"


class PersonalField(StrEnum):
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    BANK_ACCOUNT = "bank_account"


class ReportStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


FLAG_OF = {PersonalField.NATIONAL_ID: "duplicate_national_id", PersonalField.PHONE: "shared_phone",
           PersonalField.BANK_ACCOUNT: "shared_bank_account"}


class ConsentRequired(Conflict):
    """A bureau pull without a valid consent that covers it."""

    code = "consent_required"


# ---------------------------------------------------------------------------------------------- blind index

def _tenant_key(uow: UnitOfWork, tenant_id: str) -> bytes:
    """HMAC(vault fingerprint key, label ‖ tenant): never rotated, so indexes stay valid."""
    from finloop.vault import service as vault

    key = vault.cached_index_key(uow, b"finloop.credit.blind-index\x00" + tenant_id.encode())
    assert key is not None  # made on first use
    return key


def forget_keys() -> None:
    from finloop.vault import service as vault

    vault.forget_index_keys()


def normalize(field: PersonalField, value: Any) -> str:
    if field is PersonalField.NATIONAL_ID:
        return normalize_national_id(value)
    if field is PersonalField.PHONE:
        return normalize_phone(value)
    if not isinstance(value, str):
        raise InvalidRequest("bank_account is 6 to 34 letters and digits.", code="invalid_account_number",
                             param="bank_account")
    return check_account_number(value, param="bank_account").upper()


def blind_index(uow: UnitOfWork, tenant_id: str, field: PersonalField, value: str) -> str:
    """64 hex characters: equal normalised values of one field in one tenant have equal indexes."""
    message = field.value.encode() + b"\x00" + normalize(field, value).encode()
    return hmac.new(_tenant_key(uow, tenant_id), message, hashlib.sha256).hexdigest()


def _purpose(field: PersonalField, applicant_id: str) -> str:
    return f"{SEAL_PREFIX}.{field.value}:{applicant_id}"


def _seal(uow: UnitOfWork, tenant_id: str, applicant_id: str, field: PersonalField, value: str) -> str:
    from finloop.vault import service as vault

    return vault.seal_secret(uow, tenant_id, value.encode(), purpose=_purpose(field, applicant_id))


def reveal(uow: UnitOfWork, applicant: Applicant, field: PersonalField) -> str | None:
    """A personal value in clear, for one call that needs it (a bureau request); never log or return it."""
    from finloop.vault import service as vault

    sealed = {PersonalField.NATIONAL_ID: applicant.national_id_sealed, PersonalField.PHONE: applicant.phone_sealed,
              PersonalField.BANK_ACCOUNT: applicant.bank_account_sealed}[field]
    if sealed is None:
        return None
    return vault.unseal_secret(uow, applicant.tenant_id, sealed, purpose=_purpose(field, applicant.id)).decode()


# ---------------------------------------------------------------------------------------------- applicants


def _check_party(uow: UnitOfWork, tenant_id: str, party_kind: Any, party_id: Any) -> PartyKind:
    from finloop.payments import service as payments

    try:
        kind = PartyKind(party_kind)
    except ValueError:
        raise InvalidRequest("party_kind is customer or merchant.", code="invalid_party_kind",
                             param="party_kind") from None
    if not isinstance(party_id, str) or not 1 <= len(party_id) <= 40:
        raise InvalidRequest("party_id is 1 to 40 characters.", code="invalid_party_id", param="party_id")
    if kind is PartyKind.CUSTOMER:
        payments.get_customer(uow, tenant_id, party_id, param="party_id")
    else:
        payments.get_merchant(uow, tenant_id, party_id, param="party_id")
    return kind


def applicant_snapshot(applicant: Applicant) -> dict[str, Any]:
    """What the audit chain keeps of an applicant: no personal data."""
    return {"party_kind": applicant.party_kind, "party_id": applicant.party_id,
            "declared_income_amount": applicant.declared_income_amount, "currency": applicant.currency,
            "employment": applicant.employment, "flags": list(applicant.flags)}


def create_applicant(uow: UnitOfWork, tenant_id: str, *, party_kind: str, party_id: str,
                     declared_income_amount: int, currency: str, employment: str, national_id: str,
                     phone: str | None = None, bank_account: str | None = None, actor: str) -> Applicant:
    """Record a customer or merchant as a credit applicant; personal data is sealed, indexed and flagged
    when another applicant shares it."""
    try:
        check_amount(declared_income_amount, allow_negative=False)
    except InvalidRequest:
        raise InvalidRequest("declared_income_amount is a non-negative integer of minor units.",
                             code="invalid_amount", param="declared_income_amount") from None
    if declared_income_amount > MAX_INCOME:
        raise InvalidRequest("declared_income_amount is too large.", code="invalid_amount",
                             param="declared_income_amount")
    if not isinstance(currency, str) or not is_currency(currency):
        raise InvalidRequest("Unknown currency; use an ISO 4217 code such as CNY.", code="unknown_currency",
                             param="currency")
    try:
        employment_ = Employment(employment)
    except ValueError:
        raise InvalidRequest(f"employment is one of {', '.join(Employment)}.", code="invalid_employment",
                             param="employment") from None
    values: dict[PersonalField, str] = {PersonalField.NATIONAL_ID: normalize(PersonalField.NATIONAL_ID, national_id)}
    if phone is not None:
        values[PersonalField.PHONE] = normalize(PersonalField.PHONE, phone)
    if bank_account is not None:
        values[PersonalField.BANK_ACCOUNT] = normalize(PersonalField.BANK_ACCOUNT, bank_account)
    kind = _check_party(uow, tenant_id, party_kind, party_id)
    if uow.session.scalar(select(Applicant.id).where(Applicant.tenant_id == tenant_id,
                                                     Applicant.party_kind == kind.value,
                                                     Applicant.party_id == party_id)) is not None:
        raise Conflict(f"This {kind.value} is already an applicant.", code="applicant_exists", param="party_id")
    indexes = {field: blind_index(uow, tenant_id, field, value) for field, value in values.items()}
    sharing = _sharing(uow, tenant_id, indexes)
    now = uow.clock.now()
    applicant_id = uow.ids.new("applicant")
    sealed = {field: _seal(uow, tenant_id, applicant_id, field, value) for field, value in values.items()}
    flags = sorted({FLAG_OF[field] for field, _ in sharing})
    applicant = Applicant(
        id=applicant_id, tenant_id=tenant_id, party_kind=kind.value, party_id=party_id,
        declared_income_amount=declared_income_amount, currency=currency, employment=employment_.value,
        national_id_sealed=sealed[PersonalField.NATIONAL_ID], national_id_index=indexes[PersonalField.NATIONAL_ID],
        national_id_last4=last4(values[PersonalField.NATIONAL_ID]),
        phone_sealed=sealed.get(PersonalField.PHONE), phone_index=indexes.get(PersonalField.PHONE),
        phone_last4=last4(values[PersonalField.PHONE]) if PersonalField.PHONE in values else None,
        bank_account_sealed=sealed.get(PersonalField.BANK_ACCOUNT),
        bank_account_index=indexes.get(PersonalField.BANK_ACCOUNT),
        bank_account_last4=last4(values[PersonalField.BANK_ACCOUNT]) if PersonalField.BANK_ACCOUNT in values
        else None,
        flags=flags, created_by=actor[:60], created_at=now, updated_at=now)
    uow.session.add(applicant)
    for field, other in sharing:
        flag = FLAG_OF[field]
        if flag not in other.flags:
            before = applicant_snapshot(other)
            other.flags = sorted({*other.flags, flag})
            other.updated_at = now
            audit.record(uow, tenant_id, actor=actor, action="credit.applicant.flagged", object_type="applicant",
                         object_id=other.id, before=before, after=applicant_snapshot(other))
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.applicant.created", object_type="applicant",
                 object_id=applicant.id, after=applicant_snapshot(applicant))
    return applicant


_INDEX_COLUMNS = {PersonalField.NATIONAL_ID: Applicant.national_id_index, PersonalField.PHONE: Applicant.phone_index,
                  PersonalField.BANK_ACCOUNT: Applicant.bank_account_index}


def _sharing(uow: UnitOfWork, tenant_id: str,
             indexes: dict[PersonalField, str]) -> list[tuple[PersonalField, Applicant]]:
    """(field, applicant) for every existing applicant of the tenant sharing one of ``indexes``: one query."""
    if not indexes:
        return []
    rows = uow.session.scalars(select(Applicant).where(Applicant.tenant_id == tenant_id, or_(
        *(_INDEX_COLUMNS[field] == index for field, index in indexes.items()))).order_by(Applicant.id)
        .with_for_update()).all()
    found: list[tuple[PersonalField, Applicant]] = []
    for row in rows:
        for field, index in indexes.items():
            if getattr(row, _INDEX_COLUMNS[field].key) == index:
                found.append((field, row))
    return found


def get_applicant(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, param: str = "applicant_id") -> Applicant:
    row = uow.session.scalar(select(Applicant).where(Applicant.tenant_id == tenant_id, Applicant.id == applicant_id))
    if row is None:
        raise NotFound(f"No such applicant: {applicant_id[:40]}.", code="applicant_not_found", param=param)
    return row


def list_applicants(uow: UnitOfWork, tenant_id: str, *, party_kind: str | None = None, party_id: str | None = None,
                    after: str | None = None, limit: int = 50) -> list[Applicant]:
    """Up to ``limit + 1`` applicants in id order (the extra row says that more exist)."""
    query = select(Applicant).where(Applicant.tenant_id == tenant_id)
    if party_kind:
        query = query.where(Applicant.party_kind == party_kind)
    if party_id:
        query = query.where(Applicant.party_id == party_id)
    if after:
        query = query.where(Applicant.id > after)
    return list(uow.session.scalars(query.order_by(Applicant.id).limit(limit + 1)))


def find_applicants(uow: UnitOfWork, tenant_id: str, field: PersonalField | str, value: str) -> list[Applicant]:
    """The tenant's applicants whose ``field`` equals ``value``, found through the blind index (the value is
    normalised and hashed, nothing is decrypted): duplicates, multi-borrowing."""
    field_ = PersonalField(field)
    index = blind_index(uow, tenant_id, field_, value)
    return list(uow.session.scalars(select(Applicant).where(
        Applicant.tenant_id == tenant_id, _INDEX_COLUMNS[field_] == index).order_by(Applicant.id)))


def duplicates(uow: UnitOfWork, tenant_id: str, applicant: Applicant) -> dict[str, list[str]]:
    """The other applicants sharing each of this applicant's personal values, by field."""
    indexes = {field: getattr(applicant, column.key) for field, column in _INDEX_COLUMNS.items()
               if getattr(applicant, column.key) is not None}
    out: dict[str, list[str]] = {field.value: [] for field in indexes}
    rows = uow.session.scalars(select(Applicant).where(Applicant.tenant_id == tenant_id, Applicant.id != applicant.id,
                                                       or_(*(_INDEX_COLUMNS[f] == i for f, i in indexes.items())))
                               .order_by(Applicant.id)).all()
    for row in rows:
        for field, index in indexes.items():
            if getattr(row, _INDEX_COLUMNS[field].key) == index:
                out[field.value].append(row.id)
    return out


def list_memberships(uow: UnitOfWork, tenant_id: str, applicant: Applicant) -> list[str]:
    """The risk lists ("black:phone", "grey:payout_account", "white:customer" ...) the applicant is on now,
    asked of the risk engine with the values opened in memory (it hashes them under its own index key)."""
    from finloop.risk import lists

    event: dict[str, Any] = {}
    if applicant.party_kind == PartyKind.CUSTOMER.value:
        event["customer_id"] = applicant.party_id
    phone = reveal(uow, applicant, PersonalField.PHONE)
    account = reveal(uow, applicant, PersonalField.BANK_ACCOUNT)
    if phone:
        event["phone"] = phone
    if account:
        event["payout_account"] = account
    return list(lists.memberships(uow, tenant_id, event, at=uow.clock.now()).lists)


# ---------------------------------------------------------------------------------------------- consents


def consent_snapshot(consent: Consent) -> dict[str, Any]:
    return {"applicant_id": consent.applicant_id, "purpose": consent.purpose, "scope": list(consent.scope),
            "channel": consent.channel, "given_at": consent.given_at.isoformat(),
            "expires_at": consent.expires_at.isoformat(),
            "revoked_at": consent.revoked_at.isoformat() if consent.revoked_at else None}


def grant_consent(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, scope: Sequence[str],
                  purpose: str = ConsentPurpose.CREDIT_ASSESSMENT.value, channel: str = ConsentChannel.APP.value,
                  evidence: str = "", given_at: datetime | None = None, expires_at: datetime | None = None,
                  actor: str) -> Consent:
    """Record an applicant's consent. ``given_at`` defaults to now (never later), ``expires_at`` to 90 days
    after it (at most 366)."""
    try:
        purpose_ = ConsentPurpose(purpose)
    except ValueError:
        raise InvalidRequest(f"purpose is one of {', '.join(ConsentPurpose)}.", code="invalid_consent_purpose",
                             param="purpose") from None
    try:
        scopes = sorted({ConsentScope(s).value for s in scope})
    except (ValueError, TypeError):
        raise InvalidRequest(f"scope lists some of {', '.join(ConsentScope)}.", code="invalid_consent_scope",
                             param="scope") from None
    if not scopes:
        raise InvalidRequest("scope names at least one use.", code="invalid_consent_scope", param="scope")
    try:
        channel_ = ConsentChannel(channel)
    except ValueError:
        raise InvalidRequest(f"channel is one of {', '.join(ConsentChannel)}.", code="invalid_consent_channel",
                             param="channel") from None
    evidence = check_text(evidence, param="evidence", max_length=200)
    now = uow.clock.now()
    given = given_at or now
    if given.tzinfo is None or given > now:
        raise InvalidRequest("given_at is a time with its offset, not in the future.", code="invalid_given_at",
                             param="given_at")
    expires = expires_at or given + timedelta(days=DEFAULT_CONSENT_DAYS)
    if expires.tzinfo is None or expires <= now or expires <= given \
            or expires > given + timedelta(days=MAX_CONSENT_DAYS):
        raise InvalidRequest(f"expires_at is in the future, at most {MAX_CONSENT_DAYS} days after given_at.",
                             code="invalid_expires_at", param="expires_at")
    applicant = get_applicant(uow, tenant_id, applicant_id)
    consent = Consent(id=uow.ids.new("credit_consent"), tenant_id=tenant_id, applicant_id=applicant.id,
                      purpose=purpose_.value, scope=scopes, channel=channel_.value, evidence=evidence, given_at=given,
                      expires_at=expires, revoked_at=None, created_by=actor[:60], created_at=now)
    uow.session.add(consent)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.consent.granted", object_type="credit_consent",
                 object_id=consent.id, after=consent_snapshot(consent))
    return consent


def get_consent(uow: UnitOfWork, tenant_id: str, consent_id: str, *, lock: bool = False) -> Consent:
    query = select(Consent).where(Consent.tenant_id == tenant_id, Consent.id == consent_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such consent: {consent_id[:40]}.", code="consent_not_found", param="consent_id")
    return row


def revoke_consent(uow: UnitOfWork, tenant_id: str, consent_id: str, *, actor: str) -> Consent:
    consent = get_consent(uow, tenant_id, consent_id, lock=True)
    if consent.revoked_at is not None:
        raise Conflict("This consent is already revoked.", code="consent_revoked", param="consent_id")
    before = consent_snapshot(consent)
    consent.revoked_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.consent.revoked", object_type="credit_consent",
                 object_id=consent.id, before=before, after=consent_snapshot(consent))
    return consent


def list_consents(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, after: str | None = None,
                  limit: int = 50) -> list[Consent]:
    get_applicant(uow, tenant_id, applicant_id)
    query = select(Consent).where(Consent.tenant_id == tenant_id, Consent.applicant_id == applicant_id)
    if after:
        query = query.where(Consent.id > after)
    return list(uow.session.scalars(query.order_by(Consent.id).limit(limit + 1)))


def is_valid(consent: Consent, scope: ConsentScope, at: datetime) -> bool:
    return (consent.revoked_at is None and consent.given_at <= at < consent.expires_at
            and scope.value in consent.scope)


def valid_consent(uow: UnitOfWork, tenant_id: str, applicant_id: str, scope: ConsentScope,
                  at: datetime | None = None) -> Consent | None:
    """The applicant's latest consent valid at ``at`` (default now) that covers ``scope``."""
    at = at or uow.clock.now()
    rows = uow.session.scalars(select(Consent).where(
        Consent.tenant_id == tenant_id, Consent.applicant_id == applicant_id, Consent.revoked_at.is_(None),
        Consent.given_at <= at, Consent.expires_at > at).order_by(Consent.id.desc())).all()
    return next((c for c in rows if is_valid(c, scope, at)), None)


# ---------------------------------------------------------------------------------------------- bureau reports


def begin_pull(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, provider: str = bureau.DEFAULT_PROVIDER,
               actor: str) -> tuple[BureauReport, BureauRequest]:
    """Record a pending pull (first transaction of ``flows.pull_report``) and the request to send after the
    commit. Refused without a valid consent that covers bureau reports."""
    if not isinstance(provider, str) or provider not in bureau.providers():
        raise InvalidRequest(f"provider is one of {', '.join(bureau.providers())}.", code="unknown_bureau_provider",
                             param="provider")
    applicant = get_applicant(uow, tenant_id, applicant_id)
    now = uow.clock.now()
    consent = valid_consent(uow, tenant_id, applicant.id, ConsentScope.BUREAU_REPORT, now)
    if consent is None:
        raise ConsentRequired("The applicant has no valid consent to a bureau report: record one first.",
                              param="applicant_id")
    report = BureauReport(id=uow.ids.new("bureau_report"), tenant_id=tenant_id, applicant_id=applicant.id,
                          consent_id=consent.id, provider=provider, status=ReportStatus.PENDING.value,
                          requested_at=now, created_by=actor[:60])
    uow.session.add(report)
    uow.session.flush()
    national_id = reveal(uow, applicant, PersonalField.NATIONAL_ID)
    assert national_id is not None
    request = BureauRequest(reference=report.id, subject_index=applicant.national_id_index,
                            currency=applicant.currency, requested_at=now, national_id=national_id)
    return report, request


def get_report(uow: UnitOfWork, tenant_id: str, report_id: str, *, lock: bool = False) -> BureauReport:
    query = select(BureauReport).where(BureauReport.tenant_id == tenant_id, BureauReport.id == report_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such bureau report: {report_id[:40]}.", code="bureau_report_not_found",
                       param="report_id")
    return row


def _pending(uow: UnitOfWork, tenant_id: str, report_id: str) -> BureauReport:
    report = get_report(uow, tenant_id, report_id, lock=True)
    if report.status != ReportStatus.PENDING.value:
        raise Conflict(f"The report is already {report.status}.", code="bureau_report_closed", param="report_id")
    return report


def complete_pull(uow: UnitOfWork, tenant_id: str, report_id: str, result: BureauResult) -> BureauReport:
    report = _pending(uow, tenant_id, report_id)
    applicant = get_applicant(uow, tenant_id, report.applicant_id)
    report.status = ReportStatus.COMPLETED.value
    report.received_at = uow.clock.now()
    report.latency_ms = result.latency_ms
    report.provider_reference = result.provider_reference[:100]
    report.bureau_score = result.score
    report.is_thin_file = result.is_thin_file
    report.open_loans = result.open_loans
    report.open_loan_balance_amount = result.open_loan_balance_amount
    report.currency = applicant.currency
    report.enquiries_30d = result.enquiries_within(30)
    report.enquiries_90d = result.enquiries_within(90)
    report.delinquencies_24m = result.delinquencies_within(730)
    report.report = result.detail()
    uow.session.flush()
    return report


def fail_pull(uow: UnitOfWork, tenant_id: str, report_id: str, error: ExternalServiceError,
              latency_ms: int | None = None) -> BureauReport:
    report = _pending(uow, tenant_id, report_id)
    report.status = ReportStatus.FAILED.value
    report.received_at = uow.clock.now()
    report.latency_ms = latency_ms
    report.error_code = error.code[:100]
    report.error_message = error.message[:500]
    uow.session.flush()
    return report


def list_reports(uow: UnitOfWork, tenant_id: str, *, applicant_id: str | None = None, after: str | None = None,
                 limit: int = 50) -> list[BureauReport]:
    query = select(BureauReport).where(BureauReport.tenant_id == tenant_id)
    if applicant_id:
        query = query.where(BureauReport.applicant_id == applicant_id)
    if after:
        query = query.where(BureauReport.id > after)
    return list(uow.session.scalars(query.order_by(BureauReport.id).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- rating policy


def get_bands(uow: UnitOfWork, tenant_id: str) -> tuple[RatingBand, ...]:
    """The tenant's rating bands (the defaults until set)."""
    row = uow.session.get(RatingPolicy, tenant_id)
    return DEFAULT_BANDS if row is None else check_bands(row.bands)


def get_policy(uow: UnitOfWork, tenant_id: str) -> RatingPolicy:
    row = uow.session.get(RatingPolicy, tenant_id)
    if row is not None:
        return row
    return RatingPolicy(tenant_id=tenant_id, bands=bands_json(DEFAULT_BANDS), updated_by="default",
                        updated_at=uow.clock.now())


def set_bands(uow: UnitOfWork, tenant_id: str, bands: Sequence[dict[str, Any]], *, actor: str) -> RatingPolicy:
    checked = bands_json(check_bands(bands))
    row = uow.session.get(RatingPolicy, tenant_id, with_for_update=True)
    before = None if row is None else {"bands": list(row.bands)}
    now = uow.clock.now()
    if row is None:
        row = RatingPolicy(tenant_id=tenant_id, bands=checked, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.bands, row.updated_by, row.updated_at = checked, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.rating_policy.updated", object_type="credit_rating_policy",
                 object_id=tenant_id, before=before, after={"bands": checked})
    return row
