"""Publishing events: stored with the change, fanned out only to the endpoints that want them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from finloop.audit.models import AuditEvent
from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from finloop.db.models import OutboxMessage
from finloop.webhooks import service
from finloop.webhooks.domain import EndpointStatus
from finloop.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.webhooks.helpers import endpoint, outbox_rows, publish


def targets(db, message_id: str) -> list[str]:
    return sorted(row.payload["endpoint_id"] for row in outbox_rows(db) if row.payload["message_id"] == message_id)


def test_publish_stores_the_message_and_enqueues_one_delivery_per_endpoint(db, tenant, clock):
    first, _ = endpoint(db, tenant.id)
    second, _ = endpoint(db, tenant.id, "https://example.org/other")
    message_id = publish(db, tenant.id, data={"id": "pay_1", "amount": 1250, "currency": "CNY"})
    assert message_id.startswith("msg_")
    with db.uow(read_only=True) as uow:
        message = service.get_message(uow, tenant.id, message_id)
        assert (message.type, message.merchant_id, message.created_at) == ("payment.succeeded", None, clock.now())
        assert json.loads(message.payload) == {"type": "payment.succeeded", "timestamp": "2026-03-02T09:00:00Z",
                                               "data": {"id": "pay_1", "amount": 1250, "currency": "CNY"}}
    rows = outbox_rows(db)
    assert sorted(r.payload["endpoint_id"] for r in rows) == sorted([first, second])
    assert {(r.tenant_id, r.status, r.payload["message_id"], r.payload["trigger"]) for r in rows} == {
        (tenant.id, "pending", message_id, "scheduled")}


def test_nothing_is_stored_or_sent_when_the_callers_transaction_rolls_back(db, tenant):
    endpoint(db, tenant.id)
    with db.uow() as uow:
        service.publish_event(uow, tenant.id, type="payment.failed", data={"id": "pay_1"})
        # no commit: the payment change failed, so its event never happened
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(WebhookMessage)) is None
        assert uow.session.scalar(select(OutboxMessage)) is None


def test_an_endpoint_gets_only_its_subscribed_types(db, tenant):
    refunds, _ = endpoint(db, tenant.id, event_types=["refund.succeeded", "refund.failed"])
    everything, _ = endpoint(db, tenant.id)
    payment = publish(db, tenant.id, "payment.succeeded")
    refund = publish(db, tenant.id, "refund.failed")
    assert targets(db, payment) == [everything]
    assert targets(db, refund) == sorted([refunds, everything])


def test_a_merchant_endpoint_gets_only_its_merchants_events(db, tenant):
    mine, _ = endpoint(db, tenant.id, merchant_id="mer_A")
    theirs, _ = endpoint(db, tenant.id, merchant_id="mer_B")
    platform, _ = endpoint(db, tenant.id)
    assert targets(db, publish(db, tenant.id, merchant_id="mer_A")) == sorted([mine, platform])
    assert targets(db, publish(db, tenant.id, merchant_id="mer_B")) == sorted([theirs, platform])
    assert targets(db, publish(db, tenant.id, "routing.channel_health_changed")) == [platform]


def test_disabled_deleted_and_other_tenants_endpoints_get_nothing(db, tenant, other_tenant):
    disabled, _ = endpoint(db, tenant.id)
    deleted, _ = endpoint(db, tenant.id)
    endpoint(db, other_tenant.id)
    live, _ = endpoint(db, tenant.id)
    with db.uow() as uow:
        service.update_endpoint(uow, tenant.id, disabled, actor="test", status=EndpointStatus.DISABLED)
        service.delete_endpoint(uow, tenant.id, deleted, actor="test")
        uow.commit()
    assert targets(db, publish(db, tenant.id)) == [live]


def test_a_message_without_subscribers_is_still_kept(db, tenant):
    message_id = publish(db, tenant.id)
    assert outbox_rows(db) == []
    with db.uow(read_only=True) as uow:
        assert service.get_message(uow, tenant.id, message_id).id == message_id


@pytest.mark.parametrize(("kwargs", "code", "param"), [
    ({"type": "payment.exploded"}, "unknown_event_type", "type"),
    ({"merchant_id": "has space"}, "invalid_merchant_id", "merchant_id"),
    ({"data": {"n": float("inf")}}, "invalid_event_data", "data"),
])
def test_publish_refuses_bad_events(db, tenant, kwargs, code, param):
    arguments = {"type": "payment.succeeded", "data": {}, **kwargs}
    with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
        service.publish_event(uow, tenant.id, **arguments)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_update_validates_everything_before_changing_anything(db, tenant):
    endpoint_id, _ = endpoint(db, tenant.id, event_types=["payment.failed"])
    with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
        service.update_endpoint(uow, tenant.id, endpoint_id, actor="test", description="new",
                                url="http://example.com/")
    assert caught.value.code == "https_required"
    with db.uow() as uow:
        changed = service.update_endpoint(uow, tenant.id, endpoint_id, actor="test", event_types=[],
                                          merchant_id="mer_A", description="all of A")
        uow.commit()
    assert (changed.event_types, changed.merchant_id, changed.description) == ([], "mer_A", "all of A")
    with db.uow() as uow:
        unbound = service.update_endpoint(uow, tenant.id, endpoint_id, actor="test", merchant_id=None)
        assert (unbound.merchant_id, unbound.description) == (None, "all of A")


def test_rotation_keeps_the_old_secret_for_a_day_and_audits_without_secrets(db, tenant, clock):
    endpoint_id, first = endpoint(db, tenant.id)
    with db.uow() as uow:
        rotated, second = service.rotate_secret(uow, tenant.id, endpoint_id, actor="test")
        uow.commit()
    assert second != first and second.startswith("whsec_")
    assert rotated.previous_secret_expires_at == clock.now() + timedelta(hours=24)
    with db.uow(read_only=True) as uow:
        target = service.load_target(uow, tenant.id, publish(db, tenant.id), endpoint_id)
        assert target is not None and target.secrets == (second, first)
        events = [(e.action, json.dumps([e.before, e.after])) for e in uow.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.seq))]
    assert [action for action, _ in events][-2:] == ["webhook_endpoint.created", "webhook_endpoint.secret_rotated"]
    assert all(first not in text and second not in text for _, text in events)
    clock.advance(timedelta(hours=24))
    with db.uow(read_only=True) as uow:
        target = service.load_target(uow, tenant.id, publish(db, tenant.id), endpoint_id)
        assert target is not None and target.secrets == (second,)


def test_another_tenants_endpoint_and_message_are_not_found(db, tenant, other_tenant):
    endpoint_id, _ = endpoint(db, tenant.id)
    message_id = publish(db, tenant.id)
    with db.uow() as uow:
        with pytest.raises(NotFound):
            service.get_endpoint(uow, other_tenant.id, endpoint_id)
        with pytest.raises(NotFound):
            service.get_message(uow, other_tenant.id, message_id)
        with pytest.raises(NotFound):
            service.replay_message(uow, other_tenant.id, message_id, actor="test")
        with pytest.raises(NotFound):
            service.replay_message(uow, tenant.id, message_id, actor="test", endpoint_id="we_nope")


def test_replay_enqueues_for_subscribers_or_one_endpoint(db, tenant):
    first, _ = endpoint(db, tenant.id)
    second, _ = endpoint(db, tenant.id)
    merchant_only, _ = endpoint(db, tenant.id, merchant_id="mer_B")
    message_id = publish(db, tenant.id, merchant_id="mer_A")
    with db.uow() as uow:
        assert sorted(service.replay_message(uow, tenant.id, message_id, actor="test")) == sorted([first, second])
        assert service.replay_message(uow, tenant.id, message_id, actor="test", endpoint_id=second) == [second]
        with pytest.raises(InvalidRequest) as caught:
            service.replay_message(uow, tenant.id, message_id, actor="test", endpoint_id=merchant_only)
        assert caught.value.code == "endpoint_not_subscribed"
        service.update_endpoint(uow, tenant.id, first, actor="test", status=EndpointStatus.DISABLED)
        with pytest.raises(Conflict) as conflict:
            service.replay_message(uow, tenant.id, message_id, actor="test", endpoint_id=first)
        assert conflict.value.code == "endpoint_disabled"
        uow.commit()
    replays = [r.payload["endpoint_id"] for r in outbox_rows(db) if r.payload["trigger"] == "replay"]
    assert sorted(replays) == sorted([first, second, second])


def test_a_tenant_has_at_most_fifty_endpoints(db, tenant, monkeypatch):
    monkeypatch.setattr(service, "MAX_ENDPOINTS_PER_TENANT", 2)
    endpoint(db, tenant.id)
    endpoint(db, tenant.id)
    with db.uow() as uow, pytest.raises(LimitExceeded) as caught:
        service.create_endpoint(uow, tenant.id, url="https://example.com/3", actor="test")
    assert caught.value.code == "too_many_endpoints"
    with db.uow(read_only=True) as uow:
        assert len(list(uow.session.scalars(select(WebhookEndpoint)))) == 2


def test_secrets_are_stored_sealed_and_bound_to_their_tenant(db, tenant, other_tenant):
    from finloop.vault import service as vault
    from finloop.vault.crypto import DecryptionFailed

    endpoint_id, secret = endpoint(db, tenant.id)
    with db.uow() as uow:
        _, rotated = service.rotate_secret(uow, tenant.id, endpoint_id, actor="test")
        uow.commit()
    with db.uow(read_only=True) as uow:
        row = uow.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
        assert row is not None
        stored = " ".join(str(value) for value in (row.secret_sealed, row.previous_secret_sealed))
        assert secret not in stored and rotated not in stored and secret[6:] not in stored
        assert vault.unseal_secret(uow, tenant.id, row.secret_sealed, purpose=service.SECRET_PURPOSE) == \
            rotated.encode()
        with pytest.raises(DecryptionFailed):
            vault.unseal_secret(uow, other_tenant.id, row.secret_sealed, purpose=service.SECRET_PURPOSE)
