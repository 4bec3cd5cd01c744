"""Fee schedules through the API: quotes by the most specific schedule in force, dates, retirement, the
fee a payment's success books without a channel-reported fee, bad input, permissions and tenant isolation."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from finloop.clearing import service as clearing
from finloop.clearing.models import FeeSchedule
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import make_tenant
from tests.payments.conftest import Shop


def _schedule(client: TestClient, shop: Shop, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/fee-schedules", headers=shop.tenant.headers, json={"channel": "unionpay", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _quote(client: TestClient, shop: Shop, method: str | None, amount: int = 10_000,
           channel: str = "unionpay") -> dict:  # type: ignore[type-arg]
    body = {"channel": channel, "amount": amount, "currency": "CNY", **({"method": method} if method else {})}
    response = client.post("/v1/fee-schedules/quote", headers=shop.tenant.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _count(db: Database) -> int:
    with db.uow(read_only=True) as uow:
        return len(uow.session.query(FeeSchedule).all())


def test_schedules_price_payments_from_their_date_until_retired(client: TestClient, shop: Shop, db: Database,
                                                                 clock: FrozenClock) -> None:
    card = _schedule(client, shop, method="card", currency="CNY", kind="percentage_plus_fixed", rate="0.01",
                     fixed_amount=30, minimum_amount=50, maximum_amount=500, bearer="merchant",
                     refund_fee_policy="retained")
    assert card["status"] == "active" and card["rate"] == "0.01" and card["method"] == "card"
    quote = _quote(client, shop, "card")
    assert (quote["fee_amount"], quote["schedule_id"], quote["bearer"], quote["refund_fee_policy"]) == (
        130, card["id"], "merchant", "retained")
    assert card["id"] in quote["explanation"] and "half up" in quote["explanation"]
    assert _quote(client, shop, "card", amount=100)["fee_amount"] == 50  # the minimum
    # No schedule for QR: the channel's own rate (0.006), the platform bears it.
    fallback = _quote(client, shop, "qr")
    assert (fallback["fee_amount"], fallback["schedule_id"], fallback["bearer"]) == (60, None, "platform")

    # A schedule for every method and currency, by monthly volume; the card schedule stays more specific.
    bands = [{"up_to": 1_000_000, "rate": "0.008"}, {"rate": "0.004", "fixed_amount": 1}]
    volume = _schedule(client, shop, kind="tiered_by_monthly_volume", tiers=bands)
    assert volume["tiers"][1] == {"up_to": None, "rate": "0.004", "fixed_amount": 1}
    assert _quote(client, shop, "qr")["fee_amount"] == 80
    assert _quote(client, shop, "card")["schedule_id"] == card["id"]

    # A new schedule from tomorrow leaves today's payments alone.
    today = clock.now().date()
    tomorrow = _schedule(client, shop, method="card", currency="CNY", kind="fixed", fixed_amount=99,
                         effective_from=(today + timedelta(days=1)).isoformat())
    assert _quote(client, shop, "card")["schedule_id"] == card["id"]
    with db.uow(read_only=True) as uow:
        assert clearing.fee_bearer(uow, shop.tenant.id, "unionpay", "card") == clearing.FeeBearer.MERCHANT
        assert clearing.fee_bearer(uow, shop.tenant.id, "paypal", "card") == clearing.FeeBearer.PLATFORM
        channel = payments.channel_by_code(uow, shop.tenant.id, "unionpay")
        # What _succeed books when the channel does not report its fee.
        assert payments.expected_fee(channel, 10_000, uow=uow, method="card", currency="CNY") == 130
        assert payments.expected_fee(channel, 10_000) == 60  # routing's estimate: the channel's own rate
    clock.advance(timedelta(days=1))
    assert _quote(client, shop, "card")["schedule_id"] == tomorrow["id"]

    retired = client.post(f"/v1/fee-schedules/{tomorrow['id']}/retire", headers=shop.tenant.headers)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert _quote(client, shop, "card")["schedule_id"] == card["id"]
    again = client.post(f"/v1/fee-schedules/{tomorrow['id']}/retire", headers=shop.tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "fee_schedule_retired"

    listed = client.get("/v1/fee-schedules", headers=shop.tenant.headers, params={"limit": 2}).json()
    assert [s["id"] for s in listed["data"]] == [tomorrow["id"], volume["id"]] and listed["has_more"]
    rest = client.get("/v1/fee-schedules", headers=shop.tenant.headers,
                      params={"starting_after": listed["next_cursor"]}).json()
    assert [s["id"] for s in rest["data"]] == [card["id"]]
    assert client.get(f"/v1/fee-schedules/{card['id']}", headers=shop.tenant.headers).json() == card

    other = make_tenant(db, "Rival")
    assert client.get(f"/v1/fee-schedules/{card['id']}", headers=other.headers).status_code == 404
    assert client.post(f"/v1/fee-schedules/{card['id']}/retire", headers=other.headers).status_code == 404
    assert client.post("/v1/fee-schedules/quote", headers=other.headers,
                       json={"channel": "unionpay", "amount": 100, "currency": "CNY"}).status_code == 404
    assert client.get("/v1/fee-schedules", headers=other.headers).json()["data"] == []


def test_bad_schedules_are_refused_and_write_nothing(client: TestClient, shop: Shop, db: Database) -> None:
    headers = shop.tenant.headers
    ok = {"channel": "unionpay", "kind": "percentage", "rate": "0.01"}
    cases = [
        ({**ok, "kind": "bogus"}, 400, "kind"),
        ({**ok, "rate": "1.5"}, 400, "rate"),
        ({**ok, "rate": "NaN"}, 400, "rate"),
        ({**ok, "rate": "0"}, 400, "rate"),
        ({**ok, "fixed_amount": 1.5}, 400, "fixed_amount"),
        ({**ok, "fixed_amount": 5}, 400, "rate"),
        ({**ok, "minimum_amount": 10, "maximum_amount": 5}, 400, "minimum_amount"),
        ({**ok, "method": "wallet_balance"}, 400, "method"),
        ({**ok, "currency": "XXQ"}, 400, "currency"),
        ({**ok, "bearer": "nobody"}, 400, "bearer"),
        ({**ok, "refund_fee_policy": "sometimes"}, 400, "refund_fee_policy"),
        ({**ok, "effective_from": "2020-01-01"}, 400, "effective_from"),
        ({**ok, "channel": "nowhere"}, 404, "channel"),
        ({**ok, "extra": 1}, 400, "extra"),
        ({"channel": "unionpay", "kind": "tiered_by_amount", "tiers": [{"up_to": 10}, {"up_to": 5}, {}]}, 400,
         "tiers[1].up_to"),
        ({"channel": "unionpay", "kind": "tiered_by_amount", "tiers": [{"up_to": -1}]}, 400, "tiers[0].up_to"),
        ({"channel": "unionpay", "kind": "tiered_by_amount", "tiers": []}, 400, "tiers"),
    ]
    for body, status, param in cases:
        response = client.post("/v1/fee-schedules", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["param"] == param, (body, response.json())
        assert response.json()["error"]["code"], body
    quotes = [
        ({"channel": "unionpay", "amount": 0, "currency": "CNY"}, 400, "amount"),
        ({"channel": "unionpay", "amount": 100, "currency": "CNY", "method": "telepathy"}, 400, "method"),
        ({"channel": "nowhere", "amount": 100, "currency": "CNY"}, 404, "channel"),
    ]
    for body, status, param in quotes:
        response = client.post("/v1/fee-schedules/quote", headers=headers, json=body)
        assert response.status_code == status and response.json()["error"]["param"] == param, response.text
    assert client.post("/v1/fee-schedules/fsc_nope/retire", headers=headers).status_code == 404
    runs = [({"business_date": "2999-01-01"}, 400, "business_date"), ({"business_date": "yesterday"}, 400,
                                                                       "business_date"),
            ({"business_date": "2026-03-02", "channel": "nowhere"}, 404, "channel")]
    for body, status, param in runs:
        response = client.post("/v1/clearing-batches/run", headers=headers, json=body)
        assert response.status_code == status and response.json()["error"]["param"] == param, response.text
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, shop.tenant.id, name="auditor", role=Role.AUDITOR, actor="test")
        uow.commit()
    auditor = {"Authorization": f"Bearer {secret}"}
    assert client.post("/v1/fee-schedules", headers=auditor, json=ok).status_code == 403
    assert client.post("/v1/clearing-batches/run", headers=auditor,
                       json={"business_date": "2026-03-02"}).status_code == 403
    assert client.get("/v1/fee-schedules", headers=auditor).status_code == 200
    assert _count(db) == 0
