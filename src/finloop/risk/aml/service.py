"""AML services: transaction monitoring runs, alerts and their cases, SAR reports; watchlists and screening.

Invariants owned here:
- an alert is stored once per (tenant, scenario, subject, window key); re-running any overlapping range
  finds the stored alert and opens no second case (``open_case`` is idempotent too);
- every new alert opens a case (source ``aml_alert``); every screening with hits at or above the
  threshold opens a case (source ``screening``) and waits for a review (confirm or dismiss);
- a watchlist import replaces the tenant's entries of that source in one transaction; the same file
  twice changes nothing; a malformed file is rejected with nothing written;
- the screened name is sealed by the vault; only its masked form is stored in clear and shown.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk.aml import loaders, scenarios, screening
from finloop.risk.aml.models import AmlAlert, AmlConfigRow, Screening, WatchlistEntry, WatchlistKey
from finloop.risk.aml.scenarios import Alert, AmlConfig
from finloop.risk.domain import mask

MAX_RANGE_DAYS = 366
MAX_NAME = 300
SOURCES = {"ofac_csv": "ofac_sdn", "un_xml": "un_consolidated"}
SUBJECT_TYPES = ("customer", "merchant", "beneficiary", "promoter")
NAME_PURPOSE = "risk.screening.name"
SYSTEM_ACTOR = "system:risk.aml"


# ---------------------------------------------------------------------------------------------- config


def get_config(uow: UnitOfWork, tenant_id: str) -> AmlConfig:
    row = uow.session.get(AmlConfigRow, tenant_id)
    return AmlConfig() if row is None else AmlConfig.from_json(row.config)


def set_config(uow: UnitOfWork, tenant_id: str, *, changes: Mapping[str, Any], actor: str) -> AmlConfig:
    """Overrides of the shipped defaults (validated by the API schema); unknown scenarios are a 400."""
    for name in changes.get("enabled") or ():
        if name not in scenarios.SCENARIOS:
            raise InvalidRequest(f"Unknown scenario {name!r}.", code="invalid_scenario", param="enabled")
    row = uow.session.get(AmlConfigRow, tenant_id)
    before = dict(row.config) if row is not None else {}
    merged = {**before, **{k: v for k, v in changes.items() if v is not None}}
    config = AmlConfig.from_json(merged)
    now = uow.clock.now()
    if row is None:
        uow.session.add(AmlConfigRow(tenant_id=tenant_id, config=merged, updated_by=actor, updated_at=now))
    else:
        row.config, row.updated_by, row.updated_at = merged, actor, now
    audit.record(uow, tenant_id, actor=actor, action="risk.aml.configured", object_type="aml_config",
                 object_id=tenant_id, before=before, after=merged)
    return config


# ---------------------------------------------------------------------------------------------- frame


def load_frame(uow: UnitOfWork, tenant_id: str, *, start: datetime, end: datetime) -> pl.DataFrame:
    """The monitored movements in [start, end): succeeded payments (an order is an ``out`` of its customer
    and an ``in`` of its merchant; a wallet top-up an ``in`` of its customer), succeeded wallet
    withdrawals (``out`` of the customer) and succeeded payouts (``out`` of the party)."""
    from finloop.payments.models import Customer, Merchant, Payment, Withdrawal
    from finloop.payouts.models import Payout

    rows: list[dict[str, Any]] = []
    payments = uow.session.scalars(select(Payment).where(
        Payment.tenant_id == tenant_id, Payment.status == "succeeded", Payment.succeeded_at >= start,
        Payment.succeeded_at < end)).all()
    for p in payments:
        at = p.succeeded_at
        country = (p.meta or {}).get("country")
        amount = p.captured_amount or p.amount
        if p.purpose == "wallet_top_up":
            if p.customer_id:
                rows.append({"id": p.id, "source": "top_up", "customer_id": p.customer_id, "account_kind": "customer",
                             "counterparty_id": None, "direction": "in", "amount": amount, "currency": p.currency,
                             "at": at, "country": country})
            continue
        if p.customer_id:
            rows.append({"id": p.id, "source": "payment", "customer_id": p.customer_id, "account_kind": "customer",
                         "counterparty_id": p.merchant_id, "direction": "out", "amount": amount,
                         "currency": p.currency, "at": at, "country": country})
        if p.merchant_id:
            rows.append({"id": p.id, "source": "payment", "customer_id": p.merchant_id, "account_kind": "merchant",
                         "counterparty_id": p.customer_id, "direction": "in", "amount": amount,
                         "currency": p.currency, "at": at, "country": country})
    for w in uow.session.scalars(select(Withdrawal).where(
            Withdrawal.tenant_id == tenant_id, Withdrawal.status == "succeeded", Withdrawal.updated_at >= start,
            Withdrawal.updated_at < end)).all():
        rows.append({"id": w.id, "source": "withdrawal", "customer_id": w.customer_id, "account_kind": "customer",
                     "counterparty_id": None, "direction": "out", "amount": w.amount, "currency": w.currency,
                     "at": w.updated_at, "country": None})
    for po in uow.session.scalars(select(Payout).where(
            Payout.tenant_id == tenant_id, Payout.status == "succeeded", Payout.updated_at >= start,
            Payout.updated_at < end)).all():
        rows.append({"id": po.id, "source": "payout", "customer_id": po.party_id, "account_kind": po.party_kind,
                     "counterparty_id": po.payout_account_id, "direction": "out", "amount": po.amount,
                     "currency": po.currency, "at": po.updated_at, "country": None})
    if not rows:
        return scenarios.empty_frame()

    customer_ids = {r["customer_id"] for r in rows if r["account_kind"] == "customer"}
    merchant_ids = {r["customer_id"] for r in rows if r["account_kind"] == "merchant"}
    customers = {c.id: c for c in uow.session.scalars(select(Customer).where(
        Customer.tenant_id == tenant_id, Customer.id.in_(customer_ids))).all()} if customer_ids else {}
    merchants = {m.id: m for m in uow.session.scalars(select(Merchant).where(
        Merchant.tenant_id == tenant_id, Merchant.id.in_(merchant_ids))).all()} if merchant_ids else {}
    last: dict[str, datetime] = {}

    def seen(account: str | None, at: datetime | None) -> None:
        if account and at is not None and (account not in last or at > last[account]):
            last[account] = at

    if customer_ids:
        for cid, at in uow.session.execute(select(Payment.customer_id, func.max(Payment.succeeded_at)).where(
                Payment.tenant_id == tenant_id, Payment.status == "succeeded", Payment.succeeded_at < start,
                Payment.customer_id.in_(customer_ids)).group_by(Payment.customer_id)).all():
            seen(cid, at)
        for cid, at in uow.session.execute(select(Withdrawal.customer_id, func.max(Withdrawal.updated_at)).where(
                Withdrawal.tenant_id == tenant_id, Withdrawal.status == "succeeded", Withdrawal.updated_at < start,
                Withdrawal.customer_id.in_(customer_ids)).group_by(Withdrawal.customer_id)).all():
            seen(cid, at)
    if merchant_ids:
        for mid, at in uow.session.execute(select(Payment.merchant_id, func.max(Payment.succeeded_at)).where(
                Payment.tenant_id == tenant_id, Payment.status == "succeeded", Payment.succeeded_at < start,
                Payment.merchant_id.in_(merchant_ids)).group_by(Payment.merchant_id)).all():
            seen(mid, at)
    for row in rows:
        account = row["customer_id"]
        if row["account_kind"] == "customer" and account in customers:
            c = customers[account]
            row["customer_type"] = c.segment or (c.meta or {}).get("type") or "individual"
            row["account_created_at"] = c.created_at
            row["country"] = row["country"] or (c.meta or {}).get("country")
        elif row["account_kind"] == "merchant":
            row["customer_type"] = "merchant"
            row["account_created_at"] = merchants[account].created_at if account in merchants else None
        else:
            row["customer_type"] = row["account_kind"]
        row["last_activity_at"] = last.get(account)
        if isinstance(row["country"], str):
            row["country"] = row["country"].upper()[:2]
        else:
            row["country"] = None
    return scenarios.frame(rows)


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class RunResult:
    start: datetime
    end: datetime
    transactions: int
    alerts: list[AmlAlert]
    created: int


def _lookback(config: AmlConfig) -> timedelta:
    return timedelta(hours=max(config.structuring_window_hours, config.round_window_hours,
                               config.funnel_window_hours, config.rapid_hours))


def run(uow: UnitOfWork, tenant_id: str, *, start: datetime, end: datetime) -> RunResult:
    """Run the tenant's enabled scenarios over [start, end); store new alerts and open their cases."""
    if end <= start:
        raise InvalidRequest("The range is empty: to must be after from.", code="invalid_range", param="to")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidRequest(f"A run covers at most {MAX_RANGE_DAYS} days.", code="invalid_range", param="to")
    config = get_config(uow, tenant_id)
    try:
        reach = start - _lookback(config)
    except OverflowError:  # a range starting in year 1
        reach = datetime.min.replace(tzinfo=UTC)
    df = load_frame(uow, tenant_id, start=reach, end=end)
    found = scenarios.run_all(df, config, since=start)
    stored: list[AmlAlert] = []
    created = 0
    details: dict[str, dict[str, Any]] = {}
    if found:
        for item in df.to_dicts():
            details[f"{item['id']}|{item['customer_id']}"] = item
    for alert in found:
        row, new = _store(uow, tenant_id, alert, details)
        stored.append(row)
        created += int(new)
    return RunResult(start=start, end=end, transactions=df.height, alerts=stored, created=created)


def _evidence(alert: Alert, details: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    transactions = []
    for tid in alert.transaction_ids:
        d = details.get(f"{tid}|{alert.subject_id}", {})
        transactions.append({"id": tid, "source": d.get("source"), "direction": d.get("direction"),
                             "amount": d.get("amount"), "currency": d.get("currency"),
                             "at": d["at"].isoformat() if d.get("at") else None, "country": d.get("country"),
                             "counterparty_id": d.get("counterparty_id")})
    return {"transaction_ids": list(alert.transaction_ids), "transactions": transactions, "figures": alert.figures}


def _find_alert(uow: UnitOfWork, tenant_id: str, alert: Alert) -> AmlAlert | None:
    return uow.session.scalar(select(AmlAlert).where(
        AmlAlert.tenant_id == tenant_id, AmlAlert.scenario == alert.scenario,
        AmlAlert.subject_kind == alert.subject_kind, AmlAlert.subject_id == alert.subject_id,
        AmlAlert.window_key == alert.window_key))


def _store(uow: UnitOfWork, tenant_id: str, alert: Alert,
           details: Mapping[str, Mapping[str, Any]]) -> tuple[AmlAlert, bool]:
    from finloop.risk.cases import service as cases

    existing = _find_alert(uow, tenant_id, alert)
    if existing is not None:
        return existing, False
    row = AmlAlert(id=uow.ids.new("aml_alert"), tenant_id=tenant_id, scenario=alert.scenario,
                   subject_kind=alert.subject_kind, subject_id=alert.subject_id, window_key=alert.window_key,
                   currency=alert.currency, window_start=alert.window_start, window_end=alert.window_end,
                   total_amount=alert.total_amount, evidence=_evidence(alert, details),
                   description=alert.description[:500], status="open", case_id=None, created_at=uow.clock.now())
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
    except IntegrityError:  # a concurrent run stored it first
        found = _find_alert(uow, tenant_id, alert)
        if found is None:
            raise
        return found, False
    case = cases.open_case(uow, tenant_id, source="aml_alert", object_type="aml_alert", object_id=row.id,
                           reason=f"AML {alert.scenario}: {alert.description}"[:500], alert_id=row.id,
                           priority=1)
    row.case_id = case.id
    audit.record(uow, tenant_id, actor=SYSTEM_ACTOR, action="risk.aml.alert_raised", object_type="aml_alert",
                 object_id=row.id, after={"scenario": row.scenario, "subject_id": row.subject_id,
                                          "window_key": row.window_key, "case_id": case.id})
    return row, True


def run_business_day(uow: UnitOfWork, tenant_id: str, *, business_date: date) -> RunResult:
    """The scenarios over the business day: from the previous business day's cut-off to this day's."""
    from finloop.tenancy.calendar import get_calendar

    calendar = get_calendar(uow, tenant_id)
    previous = business_date - timedelta(days=1)
    while not calendar.is_business_day(previous):
        previous -= timedelta(days=1)
    return run(uow, tenant_id, start=calendar.day_closes_at(previous), end=calendar.day_closes_at(business_date))


def get_alert(uow: UnitOfWork, tenant_id: str, alert_id: str) -> AmlAlert:
    row = uow.session.get(AmlAlert, alert_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such AML alert.", code="aml_alert_not_found", param="alert_id")
    return row


def list_alerts(uow: UnitOfWork, tenant_id: str, *, scenario: str | None = None, status: str | None = None,
                subject_id: str | None = None, after: str | None = None, limit: int = 50) -> list[AmlAlert]:
    query = select(AmlAlert).where(AmlAlert.tenant_id == tenant_id)
    if scenario:
        query = query.where(AmlAlert.scenario == scenario)
    if status:
        query = query.where(AmlAlert.status == status)
    if subject_id:
        query = query.where(AmlAlert.subject_id == subject_id)
    if after:
        query = query.where(AmlAlert.id > after)
    return list(uow.session.scalars(query.order_by(AmlAlert.id).limit(limit + 1)).all())


def _close_alert(uow: UnitOfWork, case: Any, action: str) -> None:
    """Case resolver: closing the alert's case with approve or decline closes the alert."""
    alert = uow.session.get(AmlAlert, case.object_id)
    if alert is not None and alert.tenant_id == case.tenant_id:
        alert.status = "closed"


# ---------------------------------------------------------------------------------------------- SAR report

REPORT_FIELDS = ("subject_kind", "subject_id", "scenario", "alert_id", "case_id", "currency", "window_start",
                 "window_end", "total_amount", "transaction_count")


def report(uow: UnitOfWork, tenant_id: str, alert_id: str) -> dict[str, Any]:
    """The suspicious activity report of an alert: subject, scenario, transactions, amounts and the narrative
    fields the analyst completes (``narrative`` pre-filled from the scenario's description and figures)."""
    alert = get_alert(uow, tenant_id, alert_id)
    case_status = None
    if alert.case_id:
        from finloop.risk.cases import service as cases

        try:
            case_status = cases.get_case(uow, tenant_id, alert.case_id).status
        except NotFound:
            case_status = None
    transactions = list(alert.evidence.get("transactions", []))
    figures = alert.evidence.get("figures", {})
    narrative = (f"{alert.description} Subject {alert.subject_kind} {alert.subject_id}: {len(transactions)} "
                 f"transaction(s) totalling {alert.total_amount} {alert.currency} (minor units) between "
                 f"{alert.window_start.isoformat()} and {alert.window_end.isoformat()}. Figures: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(figures.items())) + ".")
    return {
        "report_type": "suspicious_activity_report", "alert_id": alert.id, "case_id": alert.case_id,
        "case_status": case_status, "scenario": alert.scenario,
        "subject": {"kind": alert.subject_kind, "id": alert.subject_id},
        "currency": alert.currency, "total_amount": alert.total_amount, "transaction_count": len(transactions),
        "window_start": alert.window_start.isoformat(), "window_end": alert.window_end.isoformat(),
        "transactions": transactions, "figures": figures,
        "narrative": {"summary": narrative, "suspicion_grounds": "", "action_taken": "", "prepared_by": ""},
        "generated_at": uow.clock.now().isoformat(),
    }


def report_csv(data: Mapping[str, Any]) -> str:
    """The report as CSV text: a header block of ``field,value`` lines, then the transactions table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["field", "value"])
    flat = {"subject_kind": data["subject"]["kind"], "subject_id": data["subject"]["id"], **data}
    for name in ("report_type", *REPORT_FIELDS):
        writer.writerow([name, flat.get(name, "")])
    writer.writerow(["narrative", data["narrative"]["summary"]])
    writer.writerow([])
    columns = ["id", "source", "direction", "amount", "currency", "at", "country", "counterparty_id"]
    writer.writerow(columns)
    for t in data["transactions"]:
        writer.writerow(["" if t.get(c) is None else t.get(c) for c in columns])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- watchlists


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: str
    list_version: str
    entries: int
    unchanged: bool


def import_watchlist(uow: UnitOfWork, tenant_id: str, *, format: str, content: bytes, actor: str) -> ImportResult:
    """Parse and replace the tenant's entries of the file's source; the same file twice changes nothing."""
    if format not in SOURCES:
        raise InvalidRequest(f"Unknown watchlist format; one of {', '.join(SOURCES)}.", code="invalid_format",
                             param="format")
    source = SOURCES[format]
    version = hashlib.sha256(content).hexdigest()[:16]
    current = uow.session.execute(select(WatchlistEntry.list_version, func.count()).where(
        WatchlistEntry.tenant_id == tenant_id, WatchlistEntry.source == source
    ).group_by(WatchlistEntry.list_version)).all()
    if len(current) == 1 and current[0][0] == version:
        return ImportResult(source=source, list_version=version, entries=int(current[0][1]), unchanged=True)
    parsed = loaders.parse(format, content)  # rejects before anything is written
    old_ids = select(WatchlistEntry.id).where(WatchlistEntry.tenant_id == tenant_id, WatchlistEntry.source == source)
    uow.session.execute(delete(WatchlistKey).where(WatchlistKey.tenant_id == tenant_id,
                                                   WatchlistKey.entry_id.in_(old_ids)))
    uow.session.execute(delete(WatchlistEntry).where(WatchlistEntry.tenant_id == tenant_id,
                                                     WatchlistEntry.source == source))
    now = uow.clock.now()
    entries, keys = [], []
    for item in parsed:
        names = [screening.normalize(item.name)] + [screening.normalize(a) for a in item.aliases]
        names = [n for n in names if n]
        entry_id = uow.ids.new("watchlist_entry")
        entries.append({"id": entry_id, "tenant_id": tenant_id, "source": source, "list_version": version,
                        "ref": item.ref[:40], "name": item.name, "normalized_name": (names[0] if names else "")[:300],
                        "aliases": list(item.aliases), "normalized_names": names, "kind": item.kind,
                        "program": item.program, "created_at": now})
        blocks: set[str] = set()
        for n in names:
            blocks |= screening.blocks(n)
        keys += [{"tenant_id": tenant_id, "block": b, "entry_id": entry_id} for b in sorted(blocks)]
    for chunk in range(0, len(entries), 1000):
        uow.session.execute(insert(WatchlistEntry), entries[chunk:chunk + 1000])
    for chunk in range(0, len(keys), 1000):
        uow.session.execute(insert(WatchlistKey), keys[chunk:chunk + 1000])
    audit.record(uow, tenant_id, actor=actor, action="risk.watchlist.imported", object_type="watchlist",
                 object_id=source, after={"list_version": version, "entries": len(entries)})
    return ImportResult(source=source, list_version=version, entries=len(entries), unchanged=False)


# ---------------------------------------------------------------------------------------------- screening


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    screening: Screening
    hit: bool


def _subject(value: str, *, param: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidRequest(f"{param} is one of {', '.join(allowed)}.", code=f"invalid_{param}", param=param)
    return value


def screen(uow: UnitOfWork, tenant_id: str, *, name: str, kind: str, subject_type: str, subject_id: str,
           threshold: int | None = None, actor: str = SYSTEM_ACTOR) -> ScreeningResult:
    """Screen ``name`` against the tenant's watchlists; store the result (hits for review) and, on a hit,
    open a case. ``kind`` individual | entity restricts the entries compared (vessels and aircraft count
    as entities)."""
    from finloop.risk.cases import service as cases
    from finloop.vault import service as vault

    _subject(kind, param="kind", allowed=("individual", "entity"))
    _subject(subject_type, param="subject_type", allowed=SUBJECT_TYPES)
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 40 or not subject_id.isprintable():
        raise InvalidRequest("subject_id is 1-40 printable characters.", code="invalid_subject_id",
                             param="subject_id")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidRequest(f"name is 1-{MAX_NAME} characters.", code="invalid_name", param="name")
    normalized = screening.normalize(name)
    if not normalized:
        raise InvalidRequest("name has no letters or digits.", code="invalid_name", param="name")
    limit = screening.DEFAULT_THRESHOLD if threshold is None else threshold
    if isinstance(limit, bool) or not isinstance(limit, int) or not 50 <= limit <= 100:
        raise InvalidRequest("threshold is an integer of 50-100.", code="invalid_threshold", param="threshold")
    kinds = ("individual",) if kind == "individual" else ("entity", "vessel", "aircraft")
    blocks = sorted(screening.blocks(normalized))
    candidates: list[WatchlistEntry] = []
    if blocks:
        ids = select(WatchlistKey.entry_id).where(WatchlistKey.tenant_id == tenant_id,
                                                  WatchlistKey.block.in_(blocks))
        candidates = list(uow.session.scalars(select(WatchlistEntry).where(
            WatchlistEntry.tenant_id == tenant_id, WatchlistEntry.id.in_(ids),
            WatchlistEntry.kind.in_(kinds))).all())
    by_id = {e.id: e for e in candidates}
    ranked = screening.rank(normalized, [(e.id, e.normalized_names) for e in candidates], limit)
    hits = [{"entry_id": i, "source": by_id[i].source, "ref": by_id[i].ref, "name": by_id[i].name,
             "matched_name": matched, "score": score, "kind": by_id[i].kind, "program": by_id[i].program}
            for i, score, matched in ranked[:20]]
    versions = dict(uow.session.execute(select(WatchlistEntry.source, func.max(WatchlistEntry.list_version)).where(
        WatchlistEntry.tenant_id == tenant_id).group_by(WatchlistEntry.source)).all())
    row = Screening(id=uow.ids.new("screening"), tenant_id=tenant_id, subject_type=subject_type,
                    subject_id=subject_id, kind=kind,
                    name_sealed=vault.seal_secret(uow, tenant_id, name.encode(), purpose=NAME_PURPOSE),
                    name_display=mask(name, keep=2)[:40], threshold=limit,
                    status="potential_match" if hits else "clear", hits=hits, list_versions=versions,
                    case_id=None, reviewed_by=None, reviewed_at=None, review_note="", created_by=actor,
                    created_at=uow.clock.now())
    uow.session.add(row)
    uow.session.flush()
    if hits:
        case = cases.open_case(uow, tenant_id, source="screening", object_type="screening", object_id=row.id,
                               reason=f"Sanctions screening of {subject_type} {subject_id}: {len(hits)} potential "
                                      f"match(es), best {hits[0]['score']} ({hits[0]['source']})"[:500],
                               priority=2)
        row.case_id = case.id
    audit.record(uow, tenant_id, actor=actor, action="risk.screening.created", object_type="screening",
                 object_id=row.id, after={"status": row.status, "hits": len(hits), "subject_type": subject_type,
                                          "subject_id": subject_id})
    return ScreeningResult(screening=row, hit=bool(hits))


def get_screening(uow: UnitOfWork, tenant_id: str, screening_id: str) -> Screening:
    row = uow.session.get(Screening, screening_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such screening.", code="screening_not_found", param="screening_id")
    return row


REVIEW_TRANSITIONS = {"potential_match": frozenset({"confirmed", "dismissed"})}


def review(uow: UnitOfWork, tenant_id: str, screening_id: str, *, decision: str, actor: str,
           note: str = "") -> Screening:
    """Confirm or dismiss a potential match; anything else (a clear or already reviewed screening) is a 409."""
    target = {"confirm": "confirmed", "dismiss": "dismissed"}.get(decision)
    if target is None:
        raise InvalidRequest("decision is confirm or dismiss.", code="invalid_decision", param="decision")
    row = get_screening(uow, tenant_id, screening_id)
    if target not in REVIEW_TRANSITIONS.get(row.status, frozenset()):
        raise Conflict(f"A {row.status} screening cannot be {target}.", code="screening_not_reviewable",
                       param="decision")
    before = row.status
    row.status, row.reviewed_by, row.reviewed_at, row.review_note = target, actor, uow.clock.now(), note[:1000]
    audit.record(uow, tenant_id, actor=actor, action="risk.screening.reviewed", object_type="screening",
                 object_id=row.id, before={"status": before}, after={"status": target})
    return row


def _resolve_screening(uow: UnitOfWork, case: Any, action: str) -> None:
    """Case resolver: declining the screening's case confirms the match, approving dismisses it."""
    row = uow.session.get(Screening, case.object_id)
    if row is not None and row.tenant_id == case.tenant_id and row.status == "potential_match":
        row.status = "confirmed" if action == "decline" else "dismissed"
        row.reviewed_by, row.reviewed_at = f"case:{case.id}", uow.clock.now()


def _register() -> None:
    from finloop.risk.cases import service as cases

    cases.register_resolver("aml_alert", _close_alert)
    cases.register_resolver("screening", _resolve_screening)


_register()
