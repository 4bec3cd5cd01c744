"""The association network: incremental components against a from-scratch union-find, the hub cut-off,
fraud counts, new devices and account age, live features equal to the replay, the API, the CLI and
concurrent merges on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from finloop.cli import app
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.risk import lists as risk_lists
from finloop.risk import service as risk
from finloop.risk.cases import service as cases
from finloop.risk.ml import train
from finloop.risk.network import config, domain, replay
from finloop.risk.network import service as network
from finloop.risk.network.models import NetworkCustomer, NetworkIdentifier, NetworkLink
from finloop.sim import fraud
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import T0, TenantHandle, make_tenant

# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def hub_limit() -> Iterator[int]:
    with config.use_hub_limit(3):
        yield 3


def _event(customer_id: str | None, *, device: str | None = None, ip: str | None = None, phone: str | None = None,
           card: str | None = None, country: str | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"amount": 1000, "currency": "CNY", **extra}
    for key, value in (("customer_id", customer_id), ("device_id", device), ("ip", ip), ("phone", phone),
                       ("card_token", card), ("ip_country", country)):
        if value is not None:
            event[key] = value
    return event


def _partition(groups: Any) -> set[frozenset[str]]:
    return {frozenset(g) for g in groups}


def oracle_components(events: Sequence[dict[str, Any]], limit: int) -> set[frozenset[str]]:
    """From scratch: each value's first ``limit`` customers (in order of first appearance) are joined; a plain
    union-find over those links, with every customer of the history as a node."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    carriers: dict[tuple[str, str], list[str]] = {}
    for event in events:
        customer = event.get("customer_id")
        if customer is None:
            continue
        find(customer)
        for kind, key in domain.KINDS.items():
            if key in event:
                seen = carriers.setdefault((kind, event[key]), [])
                if customer not in seen:
                    seen.append(customer)
    for seen in carriers.values():
        for other in seen[1:limit]:
            parent[find(other)] = find(seen[0])
    groups: dict[str, set[str]] = {}
    for customer in list(parent):
        groups.setdefault(find(customer), set()).add(customer)
    return _partition(groups.values())


# ---------------------------------------------------------------------------------------------- pure


@settings(max_examples=200, deadline=None)
@given(links=st.lists(st.tuples(st.integers(0, 15), st.sampled_from(["device", "ip", "card"]), st.integers(0, 6)),
                      max_size=60),
       limit=st.integers(1, 5))
def test_memory_components_equal_a_union_find_from_scratch(links: list[tuple[int, str, int]], limit: int) -> None:
    keys = {"device": "device_id", "ip": "ip", "card": "card_token"}
    events = [{"customer_id": f"c{c}", keys[kind]: f"v{v}"} for c, kind, v in links]
    memory = replay.MemoryNetwork(hub_limit=limit)
    for i, event in enumerate(events):
        memory.observe(event, T0 + timedelta(seconds=i))
    assert _partition(memory.components()) == oracle_components(events, limit)
    for customer in {e["customer_id"] for e in events}:
        size, fraud_members = memory.component_of(customer)
        assert size == next(len(g) for g in memory.components() if customer in g) and fraud_members == 0


def test_feature_names_are_documented_and_do_not_clash_with_velocity() -> None:
    from pathlib import Path

    from finloop.risk import velocity

    text = (Path(__file__).parents[2] / "docs" / "risk-network.md").read_text()
    assert not set(domain.FEATURE_NAMES) & set(velocity.FEATURE_NAMES)
    for name in domain.FEATURE_NAMES:
        assert f"`{name}`" in text, name
    features = replay.MemoryNetwork().observe({"amount": 5}, T0)
    assert set(features) == set(domain.FEATURE_NAMES) and features["customer.account_age_days"] == -1


# ---------------------------------------------------------------------------------------------- live == memory


customers_ = st.sampled_from([f"c{i}" for i in range(8)])
operations = st.lists(st.one_of(
    st.tuples(st.just("event"), customers_, st.sampled_from([None, "d0", "d1", "d2", "d3"]),
              st.sampled_from([None, "10.0.0.1", "10.0.0.2", "10.0.0.3"]),
              st.sampled_from([None, "+86 138 0000 0001", "+8613800000002"]),
              st.sampled_from([None, "CN", "US", "DE", "FR", "ZZ"])),
    st.tuples(st.sampled_from(["mark", "unmark"]), customers_, st.sampled_from(["decision:a", "case:b"]))),
    min_size=1, max_size=30)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_live_components_and_features_equal_memory_and_scratch(db: Database, hub_limit: int,
                                                               ops: list[tuple[Any, ...]]) -> None:
    tenant = make_tenant(db, "Hypo")
    memory = replay.MemoryNetwork(hub_limit=hub_limit)
    events: list[dict[str, Any]] = []
    marks: dict[str, set[str]] = {}
    with db.uow() as uow:
        for i, op in enumerate(ops):
            at = T0 + timedelta(minutes=7 * i)
            if op[0] == "event":
                _, customer, device, ip, phone, country = op
                event = _event(customer, device=device, ip=ip, phone=phone, country=country)
                events.append({k: (v.replace(" ", "") if k == "phone" else v) for k, v in event.items()})
                assert network.observe(uow, tenant.id, event, at=at) == memory.observe(event, at), (i, op)
            elif op[0] == "mark":
                assert network.mark_fraud(uow, tenant.id, op[1], source=op[2]) == memory.mark(op[1], op[2])
                marks.setdefault(op[1], set()).add(op[2])
            else:
                assert network.unmark_fraud(uow, tenant.id, op[1], source=op[2]) == memory.unmark(op[1], op[2])
                marks.get(op[1], set()).discard(op[2])
        live = network.components(uow, tenant.id)
        assert _partition(live.values()) == _partition(memory.components())
        expected = oracle_components(events, hub_limit)
        marked_only = {frozenset({c}) for c in marks if not any(c in g for g in expected)}
        assert _partition(live.values()) == expected | marked_only
        assert network.check(uow, tenant.id) == []
        for members in live.values():
            customer = next(iter(members))
            assert memory.component_of(customer)[1] == sum(1 for m in members if marks.get(m))
        uow.commit()


# ---------------------------------------------------------------------------------------------- hubs


def test_hub_value_links_only_its_first_customers(db: Database, tenant: TenantHandle, hub_limit: int) -> None:
    with db.uow() as uow:
        seen = [network.observe(uow, tenant.id, _event(f"c{i}", ip="100.64.0.1"), at=T0 + timedelta(minutes=i))
                for i in range(6)]
        assert [f["network.size"] for f in seen] == [1, 2, 3, 1, 1, 1]
        assert [f["network.ip_customers"] for f in seen] == [0, 1, 2, 3, 4, 5]
        assert [f["network.hubs"] for f in seen] == [0, 0, 0, 1, 1, 1]
        again = network.observe(uow, tenant.id, _event("c0", ip="100.64.0.1"), at=T0 + timedelta(hours=1))
        assert again["network.size"] == 3 and again["network.hubs"] == 1 and again["network.ip_customers"] == 5
        late = network.observe(uow, tenant.id, _event("c5", ip="100.64.0.1", device="dev_shared"),
                               at=T0 + timedelta(hours=2))
        joined = network.observe(uow, tenant.id, _event("c1", device="dev_shared"), at=T0 + timedelta(hours=3))
        assert late["network.size"] == 1 and joined["network.size"] == 4  # c5 joins through a device, not the hub
        assert network.check(uow, tenant.id) == []
        with config.use_hub_limit(10):
            result = network.rebuild(uow, tenant.id)
            assert result.largest == 6 and result.components == 1 and result.hub_limit == 10
        with config.use_hub_limit(2):
            network.rebuild(uow, tenant.id)
        assert _partition(network.components(uow, tenant.id).values()) == {
            frozenset({"c0", "c1", "c5"}), frozenset({"c2"}), frozenset({"c3"}), frozenset({"c4"})}
        assert network.check(uow, tenant.id) == []
        uow.commit()


def test_rebuild_keeps_the_incremental_components(db: Database, tenant: TenantHandle, hub_limit: int) -> None:
    history = fraud.generate(seed=3, days=2, customers=30)
    with db.uow() as uow:
        for e in history:
            network.observe(uow, tenant.id, e.event, at=e.at)
        before = network.components(uow, tenant.id)
        result = network.rebuild(uow, tenant.id)
        assert network.components(uow, tenant.id) == before  # same groups under the same ids
        assert result.relabelled == 0 and result.components == len(before)
        assert network.check(uow, tenant.id) == []


# ---------------------------------------------------------------------------------------------- fraud counts


def test_fraud_counts_follow_labels_cases_lists_and_merges(db: Database, tenant: TenantHandle, clock) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        first = risk.decide(uow, t, event_type="payment", event=_event("a1", device="dev_a"))
        risk.decide(uow, t, event_type="payment", event=_event("a2", device="dev_a"))
        other = risk.decide(uow, t, event_type="payment", event=_event("b1", device="dev_b"))
        risk.label_decision(uow, t, first.id, "fraud_confirmed", actor="test")
        risk.label_decision(uow, t, first.id, "disputed", actor="test")  # still fraud: counted once
        risk.label_decision(uow, t, other.id, "disputed", actor="test")
        assert network.view(uow, t, "a2").fraud_members == 1 and network.view(uow, t, "b1").fraud_members == 1
        bridge = risk.decide(uow, t, event_type="payment", event=_event("a2", device="dev_b"))
        assert bridge.features["network.size"] == 3 and bridge.features["network.fraud_members"] == 2
        risk.label_decision(uow, t, other.id, "succeeded", actor="test")
        assert network.view(uow, t, "a1").fraud_members == 1
        risk.label_decision(uow, t, other.id, None, actor="test")
        assert network.view(uow, t, "a1").fraud_members == 1
        case = cases.open_case(uow, t, source="decision", object_type="order", object_id="ord_b",
                               reason="review", decision_id=other.id)
        cases.close_case(uow, t, case.id, outcome="confirmed_fraud", action="add_to_list", actor="analyst")
        view = network.view(uow, t, "b1")
        assert view.fraud_members == 2
        assert set(view.fraud_sources) == {f"case:{case.id}", "list", f"decision:{other.id}"}
        listed = risk.decide(uow, t, event_type="payment", event=_event("b1", device="dev_b"))
        assert listed.outcome.value == "decline" and listed.features["network.fraud_members"] == 2
        newcomer = risk.decide(uow, t, event_type="payment", event=_event("n1", device="dev_a"))
        assert newcomer.features["network.size"] == 4 and newcomer.features["network.fraud_members"] == 2
        assert network.mark_fraud(uow, t, "ghost", source="list") is True  # a customer never seen
        assert network.view(uow, t, "ghost").size == 1 and network.view(uow, t, "ghost").fraud_members == 1
        assert network.unmark_fraud(uow, t, "ghost", source="list") is True
        assert network.unmark_fraud(uow, t, "ghost", source="list") is False
        assert network.view(uow, t, "ghost").fraud_members == 0
        assert network.check(uow, t) == []
        uow.commit()


def test_a_black_listed_customer_counts_as_fraud_from_the_moment_it_is_listed(db: Database,
                                                                            tenant: TenantHandle) -> None:
    t = tenant.id
    with db.uow() as uow:
        risk.decide(uow, t, event_type="payment", event=_event("l1", device="dev_l"))
        risk.decide(uow, t, event_type="payment", event=_event("l2", device="dev_l"))
        grey = risk_lists.add_entry(uow, t, kind="grey", level="customer", value="l1", reason="watch", actor="a")
        assert network.view(uow, t, "l2").fraud_members == 0  # only black entries count
        black = risk_lists.add_entry(uow, t, kind="black", level="customer", value="l1", reason="fraud", actor="a")
        assert network.view(uow, t, "l2").fraud_members == 1
        risk_lists.remove_entry(uow, t, black.id, actor="a")
        assert network.view(uow, t, "l2").fraud_members == 0
        risk_lists.remove_entry(uow, t, grey.id, actor="a")
        assert network.check(uow, t) == []
        uow.commit()


# ---------------------------------------------------------------------------------------------- device and age


def test_new_device_and_account_age(db: Database, tenant: TenantHandle, clock) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        ours = payments.create_customer(uow, t, reference="shopper-1")
        uow.commit()
    created = ours.created_at
    with db.uow() as uow:
        first = network.observe(uow, t, _event(ours.id, device="dev_1", customer={"age_days": 900}),
                                at=created + timedelta(days=10, hours=3))
        same = network.observe(uow, t, _event(ours.id, device="dev_1"), at=created + timedelta(days=11))
        second = network.observe(uow, t, _event(ours.id, device="dev_2"), at=created + timedelta(days=12))
        no_device = network.observe(uow, t, _event(ours.id), at=created + timedelta(days=12))
        theirs = network.observe(uow, t, _event("ext-7", device="dev_1", customer={"age_days": 42}), at=T0)
        unknown = network.observe(uow, t, _event("ext-8", customer={"age_days": -3}), at=T0)
        anonymous = network.observe(uow, t, _event(None, device="dev_1"), at=T0)
        uow.commit()
    assert [first["device.new_for_customer"], same["device.new_for_customer"], second["device.new_for_customer"],
            no_device["device.new_for_customer"], theirs["device.new_for_customer"]] == [1, 0, 1, 0, 1]
    assert first["customer.account_age_days"] == 10 and second["customer.account_age_days"] == 12  # ours wins
    assert theirs["customer.account_age_days"] == 42 and unknown["customer.account_age_days"] == -1
    assert theirs["network.device_customers"] == 1 and anonymous["network.size"] == 0
    assert anonymous["device.new_for_customer"] == 0 and anonymous["network.device_customers"] == 0


def test_geo_mismatches_and_travel_through_the_network(db: Database, tenant: TenantHandle) -> None:
    t = tenant.id
    with db.uow() as uow:
        home = payments.create_customer(uow, t, reference="traveller", metadata={"country": "DE"})
        uow.commit()
    with db.uow() as uow:
        at_home = network.observe(uow, t, _event(home.id, country="DE", card_country="DE"), at=T0)
        abroad = network.observe(uow, t, _event(home.id, country="FR", card_country="DE"),
                                 at=T0 + timedelta(minutes=30))
        flew = network.observe(uow, t, _event(home.id, country="US"), at=T0 + timedelta(hours=12))
        stay = network.observe(uow, t, _event(home.id, country="US"), at=T0 + timedelta(hours=13))
        unlocated = network.observe(uow, t, _event(home.id, country="ZZ"), at=T0 + timedelta(hours=14))
        jump = network.observe(uow, t, _event(home.id, country="CN"), at=T0 + timedelta(hours=15))
        told = network.observe(uow, t, _event("ext-1", country="CN", customer={"country": "cn"}), at=T0)
        uow.commit()
    assert at_home["geo.ip_account_mismatch"] == 0 and at_home["geo.ip_card_mismatch"] == 0
    assert abroad["geo.ip_account_mismatch"] == 1 and abroad["geo.ip_card_mismatch"] == 1
    assert abroad["geo.impossible_travel"] == 1 and abroad["geo.travel_km"] > 500
    assert flew["geo.impossible_travel"] == 0 and 0 < flew["geo.travel_kmh"] < 900
    assert stay["geo.travel_km"] == 0 and unlocated["geo.travel_km"] == 0
    assert jump["geo.impossible_travel"] == 1  # from the US (the last located event), not from ZZ
    assert told["geo.ip_account_mismatch"] == 0


# ---------------------------------------------------------------------------------------------- live == replay


def test_decisions_store_the_features_replay_computes(db: Database, tenant: TenantHandle, hub_limit: int) -> None:
    """The same labelled history decided live (each event its own transaction, labels in between) and replayed
    in memory gives every event the same network and geo features."""
    history = [e for e in fraud.generate(seed=5, days=2, customers=25, attack_rate=3.0)
               if e.event.get("customer_id")]
    labelled = {i for i, e in enumerate(history[:-1]) if e.fraud and history[i + 1].at > e.at}
    marks = []
    stored = []
    for i, e in enumerate(history):
        with db.uow() as uow:
            decision = risk.decide(uow, tenant.id, event_type=e.event_type, event=e.event, at=e.at)
            if i in labelled:
                risk.label_decision(uow, tenant.id, decision.id, "fraud_confirmed", actor="test")
                marks.append((e.at + timedelta(microseconds=1), e.event["customer_id"]))
            uow.commit()
        stored.append({k: decision.features[k] for k in domain.FEATURE_NAMES})
    replayed = list(replay.replay(tenant.id, ((e.at, e.event) for e in history), fraud_marks=marks))
    assert stored == replayed
    assert max(f["network.size"] for f in stored) >= 3 and max(f["network.fraud_members"] for f in stored) >= 1
    with db.uow(read_only=True) as uow:
        assert network.check(uow, tenant.id) == []


def test_models_trained_before_the_network_columns_stay_scoreable() -> None:
    history = fraud.generate(seed=2, days=1, customers=20)
    frame = train.build_frame("t", history)
    assert frame.columns[-len(train.NETWORK_COLUMNS):] == list(train.NETWORK_COLUMNS)
    assert len(set(frame.columns)) == len(frame.columns) and frame.x.shape[1] == len(frame.columns)
    old = {k: v for k, v in frame.encoding.items() if k != "network_columns"}
    features = {"network.size": 7, "customer.count.1h": 2}
    assert len(train.encode_row(old, features, history[0].event)) == len(train.columns(old))
    row = train.encode_row(frame.encoding, features, history[0].event)
    assert row[frame.columns.index("network.size")] == 7.0


# ---------------------------------------------------------------------------------------------- API and CLI


def _seed_ring(db: Database, tenant_id: str) -> None:
    with db.uow() as uow:
        for i, customer in enumerate(["ring-1", "ring-2", "ring-3"]):
            risk.decide(uow, tenant_id, event_type="payment", at=T0 + timedelta(minutes=i), event=_event(
                customer, device="dev-ring-0001", ip="198.51.100.77", phone="+86 138 0013 8000",
                payout_account="6222 0202 0000 1234", email="Ring.Leader@example.com"))
        uow.commit()


def test_network_api(client, db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    _seed_ring(db, tenant.id)
    path = "/v1/risk/network/customers/ring-2"
    assert client.get(path).status_code == 401
    response = client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["component"]["size"] == 3 and body["component"]["members_total"] == 3
    assert [m["customer_id"] for m in body["component"]["members"]] == ["ring-1", "ring-2", "ring-3"]
    assert set(body["links"]) == {"device", "ip", "phone", "payout_account", "email"}
    assert body["links"]["phone"][0]["value"] == "****8000" and body["links"]["phone"][0]["customers"] == 3
    assert body["links"]["email"][0]["value"] == "r***@example.com"
    assert body["component"]["shared"]["device"][0]["carriers"] == 3
    text = response.text
    for secret in ("198.51.100.77", "13800138000", "62220202", "Ring.Leader", "ring.leader", "dev-ring-0001"):
        assert secret not in text, secret
    missing = client.get("/v1/risk/network/customers/nobody", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "network_customer_not_found"
    other = client.get(path, headers=other_tenant.headers)
    assert other.status_code == 404 and other.json()["error"]["code"] == "network_customer_not_found"
    with db.uow() as uow:
        _, support = tenancy.issue_api_key(uow, tenant.id, name="support", role=Role.SUPPORT, actor="test")
        uow.commit()
    denied = client.get(path, headers={"Authorization": f"Bearer {support}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "role_not_allowed"
    assert client.get("/v1/risk/network/customers/" + "x" * 101, headers=tenant.headers).status_code in (400, 422)
    spec = client.get("/openapi.json").json()
    assert "/v1/risk/network/customers/{customer_id}" in spec["paths"]


def test_network_cli(cli, db: Database, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    _seed_ring(db, tenant.id)
    shown = cli.invoke(app, ["risk", "network", "show", "--tenant", tenant.id, "ring-1"])
    assert shown.exit_code == 0, shown.output
    assert "3 customer(s)" in shown.output and "ring-3" in shown.output and "****8000" in shown.output
    assert "198.51.100.77" not in shown.output
    as_json = cli.invoke(app, ["risk", "network", "show", "--tenant", tenant.id, "ring-1", "--json"])
    assert json.loads(as_json.output)["component"]["size"] == 3
    missing = cli.invoke(app, ["risk", "network", "show", "--tenant", tenant.id, "nobody"])
    assert missing.exit_code == 1 and "No customer nobody" in missing.output
    rebuilt = cli.invoke(app, ["risk", "network", "rebuild", "--tenant", tenant.id])
    assert rebuilt.exit_code == 0 and "3 customers" in rebuilt.output and "1 components" in rebuilt.output


# ---------------------------------------------------------------------------------------------- storage


def test_only_blind_indexes_and_masked_values_are_stored(db: Database, tenant: TenantHandle) -> None:
    _seed_ring(db, tenant.id)
    with db.uow(read_only=True) as uow:
        stored = [tuple(r) for r in uow.session.execute(select(NetworkIdentifier.key_hash, NetworkIdentifier.display))]
        stored += [tuple(r) for r in uow.session.execute(select(NetworkLink.key_hash, NetworkLink.kind))]
        assert len(stored) == 5 + 15
        dump = repr(stored)
        for secret in ("198.51.100.77", "13800138000", "6222020200001234", "ring.leader", "dev-ring-0001"):
            assert secret not in dump.lower(), secret
        assert all(len(h) == 64 for h, _ in stored)
        assert uow.session.scalar(select(func.count()).select_from(NetworkCustomer)) == 3


def test_other_tenants_values_never_link(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    with db.uow() as uow:
        network.observe(uow, tenant.id, _event("c1", device="dev_x"), at=T0)
        mine = network.observe(uow, tenant.id, _event("c2", device="dev_x"), at=T0)
        theirs = network.observe(uow, other_tenant.id, _event("c3", device="dev_x"), at=T0)
        uow.commit()
    assert mine["network.size"] == 2 and theirs["network.size"] == 1 and theirs["network.device_customers"] == 0


# ---------------------------------------------------------------------------------------------- concurrency


def test_concurrent_merges_of_the_same_components(db: Database, tenant: TenantHandle) -> None:
    """Two workers, one decision per transaction, keep joining the same components at once (PostgreSQL: row
    locks in one order, a savepoint retry when a component moved; SQLite: one writer at a time). Every
    member and fraud count survives."""
    t = tenant.id
    with db.uow() as uow:
        for i, (customer, device) in enumerate([("a1", "dev_a"), ("a2", "dev_a"), ("b1", "dev_b"), ("c1", "dev_c")]):
            network.observe(uow, t, _event(customer, device=device), at=T0 + timedelta(seconds=i))
        network.mark_fraud(uow, t, "a1", source="list")
        network.mark_fraud(uow, t, "b1", source="list")
        uow.commit()
    rounds = 5
    errors: list[BaseException] = []

    def work(barrier: threading.Barrier, events: list[dict[str, Any]]) -> None:
        try:
            barrier.wait()
            for event in events:
                with db.uow() as uow:
                    network.observe(uow, t, event, at=T0 + timedelta(minutes=1))
                    uow.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    for r in range(rounds):
        barrier = threading.Barrier(2, timeout=30)
        jobs = [[_event(f"x{r}", device="dev_a"), _event(f"x{r}", card=f"card_{r}"), _event(f"x{r}", device="dev_b")],
                [_event(f"y{r}", device="dev_b"), _event(f"y{r}", card=f"card_{r}"), _event(f"y{r}", device="dev_c")]]
        threads = [threading.Thread(target=work, args=(barrier, jobs[n])) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    with db.uow(read_only=True) as uow:
        assert network.check(uow, t) == []
        groups = network.components(uow, t)
        everyone = {"a1", "a2", "b1", "c1"} | {f"x{r}" for r in range(rounds)} | {f"y{r}" for r in range(rounds)}
        assert _partition(groups.values()) == {frozenset(everyone)}
        view = network.view(uow, t, "c1")
        assert view.size == len(everyone) and view.fraud_members == 2


def _waits_then_finishes(db: Database, step: Any, first: Any) -> list[dict[str, int]]:
    """Run ``step`` in a second transaction while ``first`` (an open unit of work) holds its locks: it must
    wait, then finish once ``first`` commits."""
    found: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with db.uow() as uow:
                found.append(step(uow))
                uow.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    racer = threading.Thread(target=second)
    racer.start()
    racer.join(0.5)
    assert racer.is_alive()  # waiting on the first transaction's locks
    first.commit()
    racer.join(30)
    assert errors == [] and len(found) == 1
    return found


def test_a_merge_waiting_on_a_component_merged_away_redoes_it(db: Database, db_url: str,
                                                              tenant: TenantHandle) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    t = tenant.id
    with db.uow() as uow:
        for event in [_event("a1", device="dev_a"), _event("a2", device="dev_a"),
                      _event("b1", device="dev_b", card="card_b")]:
            network.observe(uow, t, event, at=T0)
        uow.commit()
    redone = network.redone()
    with db.uow() as first:  # x joins A and B: B (the smaller) is merged into A and deleted
        assert network.observe(first, t, _event("x", device="dev_a", ip="10.9.9.9"), at=T0)["network.size"] == 3
        assert network.observe(first, t, _event("x", device="dev_b"), at=T0)["network.size"] == 4
        # y reaches B through card_b: it read B before the merge commits and must redo on A
        found = _waits_then_finishes(db, lambda uow: network.observe(uow, t, _event("y", card="card_b"), at=T0), first)
    assert found[0]["network.size"] == 5 and network.redone() > redone
    with db.uow(read_only=True) as uow:
        assert network.check(uow, t) == []
        assert _partition(network.components(uow, t).values()) == {frozenset({"a1", "a2", "b1", "x", "y"})}


def test_the_same_new_customer_decided_twice_at_once(db: Database, db_url: str, tenant: TenantHandle) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    t = tenant.id
    with db.uow() as uow:
        network.observe(uow, t, _event("old", device="dev_2"), at=T0)
        uow.commit()
    with db.uow() as first:
        network.observe(first, t, _event("new", device="dev_1"), at=T0)
        found = _waits_then_finishes(db, lambda uow: network.observe(
            uow, t, _event("new", device="dev_1", ip="10.1.1.1", phone="+100", card="card_1"), at=T0), first)
    assert found[0]["network.device_customers"] == 0 and found[0]["device.new_for_customer"] == 1
    with db.uow() as uow:
        again = network.observe(uow, t, _event("new", device="dev_2"), at=T0)
        uow.commit()
    assert again["network.size"] == 2 and again["network.device_customers"] == 1
    with db.uow(read_only=True) as uow:
        assert network.check(uow, t) == []
        links = uow.session.scalar(select(func.count()).select_from(NetworkLink).where(
            NetworkLink.tenant_id == t, NetworkLink.customer_id == "new"))
        assert links == 5


def test_concurrent_marks_and_merges_keep_fraud_counts(db: Database, tenant: TenantHandle) -> None:
    t = tenant.id
    with db.uow() as uow:
        for i, customer in enumerate(["m1", "m2", "m3", "m4"]):
            network.observe(uow, t, _event(customer, device=f"dev_{i}"), at=T0)
        uow.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(3, timeout=30)

    def run(step: Any) -> None:
        try:
            barrier.wait()
            with db.uow() as uow:
                step(uow)
                uow.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    steps = [lambda uow: network.mark_fraud(uow, t, "m1", source="decision:x"),
             lambda uow: network.mark_fraud(uow, t, "m1", source="case:y"),
             lambda uow: [network.observe(uow, t, _event("m1", device=f"dev_{i}"), at=T0) for i in (1, 2, 3)]]
    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with db.uow(read_only=True) as uow:
        assert network.check(uow, t) == []
        view = network.view(uow, t, "m4")
        assert view.size == 4 and view.fraud_members == 1



def test_value_indexes_are_the_lists_blind_indexes(db: Database, tenant: TenantHandle) -> None:
    from finloop.risk import lists

    event = _event("c1", device="Dev-1", ip="2001:DB8::0:1", phone="+86 138-0000-0000", card="card_9",
                   payout_account="6222 0202-0000 1234", email="Ann@Example.com")
    with db.uow() as uow:
        network.observe(uow, tenant.id, event, at=T0)
        stored = dict(uow.session.execute(select(NetworkLink.kind, NetworkLink.key_hash).where(
            NetworkLink.tenant_id == tenant.id)).all())
        expected = {kind: lists.blind_index(uow, tenant.id, kind, event[key]) for kind, key in domain.KINDS.items()}
        uow.commit()
    assert stored == expected
