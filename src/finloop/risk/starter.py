"""The starter rule pack: readable rules an analyst starts from, installed as a draft of a rule set.

What it owns:
- ``pack(model_threshold=...)`` is the pack as the API takes it (``{"rules": [...], "thresholds": {...}}``):
  card testing, account takeover, promotion abuse and mule-ring rules on the event and the velocity
  features that exist today, score bands of the champion model (``model["fraud"]``), list and velocity
  rules, and a few withdrawal, refund, registration and login rules; thresholds per event type;
- every expression passes the rule checker (``risk.service.check_rules``) and guards what may be absent:
  a rule reading a feature that another module may or may not provide (``network.*``, ``geo.*``) tests
  ``"key" in features`` first, so it stays silent instead of erroring while the feature does not exist;
  section fields absent from an event read as ``0``/``""``/``false``, so no rule fires on a default
  (``customer.age_days > 30``, never ``< 7``; countries compared only when both are known);
- ``install`` never publishes: it creates (or adds to) a rule set and writes the pack as a new draft
  version, which then goes through validate → backtest → maker-checker publish like any other draft.

Amounts are integers of minor units of the event's currency (``2000`` is 20.00 in CNY, USD, EUR...);
adjust them to your currencies before publishing. The model bands: review from ``model_threshold``
(default 20/1000, chosen on simulated data; the champion's own operating threshold is another choice, see
``champion_threshold``), a weak signal from half of it, decline from 500/1000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from finloop.core.errors import InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk import service
from finloop.risk.domain import parse_rules, parse_thresholds
from finloop.risk.models import RuleSet, RuleSetVersion

#: The rule set ``install`` creates when it is not given one, and the event types it decides.
RULE_SET_NAME = "starter"
EVENT_TYPES = ("payment", "refund", "withdrawal", "registration", "login")
#: The model the score bands read (``finloop.risk.ml.train.DEFAULT_NAME``).
MODEL_NAME = "fraud"
#: The model score from which a payment is reviewed (half of it is a weak signal). Chosen on the held-out days
#: of simulated seed 1 (``sim.fraud``): no fraud went unflagged with any band from 10 to 200 (the rules do most
#: of the work); a low band keeps the model as the safety net for fraud no rule describes.
DEFAULT_MODEL_THRESHOLD = 20
#: A model score at or above this declines outright.
MODEL_DECLINE_SCORE = 500
#: Scores: a strong signal alone declines, a medium one alone reviews, a weak one needs company.
STRONG, MEDIUM, WEAK = 25, 10, 5
THRESHOLDS: dict[str, dict[str, int]] = {
    "payment": {"review": MEDIUM, "decline": STRONG},
    "refund": {"review": MEDIUM, "decline": STRONG},
    "withdrawal": {"review": MEDIUM, "decline": STRONG},
    "registration": {"review": MEDIUM, "decline": STRONG},
    "login": {"review": MEDIUM, "decline": 30},
}

PAYMENT = ("payment",)
ACCOUNT = ("registration", "login")

#: (id, description, expression, score, forced outcome, event types); the model bands are added by ``rules``.
_RULES: tuple[tuple[str, str, str, int, str | None, tuple[str, ...]], ...] = (
    # Card testing: one device or IP runs through stolen cards with tiny amounts.
    ("ct.device_cards_1h", "One device used 3 or more cards within the hour",
     'features["device.distinct_cards.1h"] >= 3', STRONG, None, PAYMENT),
    ("ct.ip_cards_1h", "One IP address used 3 or more cards within the hour",
     'features["ip.distinct_cards.1h"] >= 3', STRONG, None, PAYMENT),
    ("ct.small_amounts_device_10m", "A third small payment (5.00 or less) from one device within 10 minutes",
     'event.amount <= 500 && features["device.count.10m"] >= 2', MEDIUM, None, PAYMENT),
    ("ct.new_account_card_abroad", "A new account paying with a card of another country than its IP",
     'customer.is_new && event.ip_country != "" && event.card_country != "" '
     '&& event.ip_country != event.card_country', MEDIUM, None, PAYMENT),
    ("ct.card_many_devices_24h", "One card used on 3 or more devices within 24 hours",
     'features["card.distinct_devices.24h"] >= 3', MEDIUM, None, PAYMENT),
    # Account takeover: an established customer, a new device, an IP abroad, an amount out of habit.
    ("ato.new_device_ip_abroad", "An established customer (over 30 days) on a new device with an IP abroad",
     'device.is_new && customer.age_days > 30 && customer.country != "" && event.ip_country != "" '
     '&& event.ip_country != customer.country', MEDIUM, None, PAYMENT),
    ("ato.fresh_device_ip_abroad", "An established customer on a device first seen within the hour, IP abroad",
     'customer.age_days > 30 && customer.country != "" && event.ip_country != "" '
     '&& event.ip_country != customer.country && features["device.count.30d"] > 0 '
     '&& features["device.count.30d"] == features["device.count.1h"]', MEDIUM, None, PAYMENT),
    ("ato.ip_abroad_unusual_amount", "An IP abroad and more than 4 times the customer's 30-day average amount",
     'customer.age_days > 30 && customer.country != "" && event.ip_country != "" '
     '&& event.ip_country != customer.country && features["customer.count.30d"] > 0 '
     '&& event.amount * features["customer.count.30d"] > 4 * features["customer.sum.30d"]', MEDIUM, None, PAYMENT),
    ("ato.night_unusual_amount", "Between 00:00 and 06:00, more than 4 times the customer's 30-day average",
     'event.hour < 6 && customer.age_days > 30 && features["customer.count.30d"] > 0 '
     '&& event.amount * features["customer.count.30d"] > 4 * features["customer.sum.30d"]', WEAK, None, PAYMENT),
    ("ato.customer_many_devices_24h", "A customer on 3 or more devices within 24 hours",
     'features["customer.distinct_devices.24h"] >= 3', MEDIUM, None, PAYMENT),
    ("ato.customer_many_cards_24h", "A customer paying with 3 or more cards within 24 hours",
     'features["customer.distinct_cards.24h"] >= 3', MEDIUM, None, PAYMENT),
    # Promotion abuse: many new accounts behind one device, phone or IP.
    ("promo.device_new_accounts_24h", "A new account on a device another account used within 24 hours",
     # The count includes the customer itself once it has paid: "another" is one more then.
     'customer.is_new && features["device.distinct_customers.24h"] '
     '>= (features["customer.count.24h"] == 0 ? 1 : 2)', STRONG, None, PAYMENT),
    ("promo.phone_accounts_24h", "A new account with a phone number another account used within 24 hours",
     'customer.is_new && features["phone.distinct_customers.24h"] '
     '>= (features["customer.count.24h"] == 0 ? 1 : 2)', STRONG, None, PAYMENT),
    ("promo.ip_new_accounts_1h", "A new account on an IP another account used within the hour",
     'customer.is_new && features["ip.distinct_customers.1h"] >= (features["customer.count.1h"] == 0 ? 1 : 2)',
     MEDIUM, None, PAYMENT),
    ("promo.small_first_order", "A new account's first, small (20.00 or less) order from a device never seen",
     'customer.is_new && device.is_new && features["device.count.30d"] == 0 && event.amount <= 2000',
     MEDIUM, None, PAYMENT),
    # Mule rings: a few accounts sharing devices and IPs move large amounts.
    ("mule.shared_device_large", "200.00 or more from a device 2 or more accounts used within 30 days",
     'features["device.distinct_customers.30d"] >= 2 && event.amount >= 20000', 15, None, PAYMENT),
    ("mule.shared_ip_large", "200.00 or more from an IP 2 or more accounts used within 30 days",
     'features["ip.distinct_customers.30d"] >= 2 && event.amount >= 20000', MEDIUM, None, PAYMENT),
    # Velocity and amounts.
    ("velocity.customer_burst_1h", "8 or more events of one customer within the hour",
     'features["customer.count.1h"] >= 8', MEDIUM, None, PAYMENT),
    ("amount.very_large", "100,000.00 or more in one payment",
     "event.amount >= 10000000", WEAK, None, PAYMENT),
    # Lists (a black-list hit already declines through the built-in rule).
    ("lists.grey", "On a grey list: look before it goes through",
     'lists.exists(l, l.startsWith("grey:"))', MEDIUM, None, ()),
    # Features another module may provide; silent while they do not exist.
    ("network.known_fraud", "Linked (shared device, card, phone...) to an account with confirmed fraud",
     '"network.fraud_members" in features && features["network.fraud_members"] >= 1', WEAK, None, PAYMENT),
    ("geo.impossible_travel", "Two places too far apart for the time between them",
     '"geo.impossible_travel" in features && features["geo.impossible_travel"] >= 1', WEAK, None, PAYMENT),
    # Withdrawals.
    ("wd.large", "A withdrawal of 50,000.00 or more", "event.amount >= 5000000", MEDIUM, None, ("withdrawal",)),
    ("wd.busy_customer_24h", "A withdrawal after 5 or more movements of the customer within 24 hours",
     'features["customer.count.24h"] >= 5', MEDIUM, None, ("withdrawal",)),
    ("wd.new_account", "A new account withdrawing 1,000.00 or more",
     "customer.is_new && event.amount >= 100000", MEDIUM, None, ("withdrawal",)),
    # Refunds.
    ("rf.customer_refunds_24h", "A customer's 4th refund within 24 hours",
     'features["customer.refunds.24h"] >= 3', MEDIUM, None, ("refund",)),
    ("rf.card_refunds_7d", "A card's 6th refund within 7 days",
     'features["card.refunds.7d"] >= 5', MEDIUM, None, ("refund",)),
    ("rf.merchant_refunds_1h", "20 or more refunds of one merchant within the hour",
     'features["merchant.refunds.1h"] >= 20', WEAK, None, ("refund",)),
    # Registrations and logins.
    ("acct.device_many_accounts_24h", "A device used by 3 or more accounts within 24 hours",
     'features["device.distinct_customers.24h"] >= 3', MEDIUM, None, ACCOUNT),
    ("acct.ip_many_accounts_1h", "An IP address used by 10 or more accounts within the hour",
     'features["ip.distinct_customers.1h"] >= 10', MEDIUM, None, ACCOUNT),
    ("login.burst_10m", "5 or more logins of one account within 10 minutes",
     'features["customer.count.10m"] >= 5', MEDIUM, None, ("login",)),
)


def _rule(rule_id: str, description: str, expression: str, score: int, outcome: str | None,
          event_types: Sequence[str]) -> dict[str, Any]:
    return {"id": rule_id, "description": description, "expression": expression, "score": score,
            "outcome": outcome, "event_types": list(event_types)}


def check_model_threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MODEL_DECLINE_SCORE:
        raise InvalidRequest(f"model_threshold is an integer score from 2 to {MODEL_DECLINE_SCORE}.",
                             code="invalid_model_threshold", param="model_threshold")
    return value


def rules(*, model_threshold: int = DEFAULT_MODEL_THRESHOLD, model_name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """The pack's rules, the model's review band at ``model_threshold`` and its weak band at half of it."""
    threshold = check_model_threshold(model_threshold)
    score = f'"{model_name}" in model && model["{model_name}"]'
    bands = (
        ("model.decline", f"Model score {MODEL_DECLINE_SCORE}/1000 or more", f"{score} >= {MODEL_DECLINE_SCORE}",
         0, "decline", PAYMENT),
        ("model.review", f"Model score {threshold}/1000 or more", f"{score} >= {threshold}", MEDIUM, None, PAYMENT),
        ("model.watch", f"Model score {(threshold + 1) // 2}/1000 or more (half the review band)",
         f"{score} >= {(threshold + 1) // 2}", WEAK, None, PAYMENT),
    )
    return [_rule(*item) for item in (*_RULES, *bands)]


def pack(*, model_threshold: int = DEFAULT_MODEL_THRESHOLD, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """``{"rules": [...], "thresholds": {...}}``: what ``POST .../versions`` and ``risk validate`` take."""
    return {"rules": rules(model_threshold=model_threshold, model_name=model_name),
            "thresholds": {k: dict(v) for k, v in THRESHOLDS.items()}}


def champion_threshold(uow: UnitOfWork, tenant_id: str, model_name: str = MODEL_NAME) -> int | None:
    """The operating threshold of the tenant's champion ``model_name`` (None without a champion)."""
    from finloop.risk.ml.models import RiskModel

    threshold = uow.session.scalar(select(RiskModel.threshold).where(
        RiskModel.tenant_id == tenant_id, RiskModel.name == model_name, RiskModel.status == "champion"))
    return None if threshold is None else max(2, min(MODEL_DECLINE_SCORE, int(threshold)))


def install(uow: UnitOfWork, tenant_id: str, *, actor: str, rule_set: str | None = None,
            model_threshold: int | None = None, note: str = "") -> RuleSetVersion:
    """Write the pack as a new draft version of ``rule_set`` (a name or id; default: the rule set named
    ``starter``, created for ``EVENT_TYPES`` when missing). The model bands follow ``model_threshold``
    (default ``DEFAULT_MODEL_THRESHOLD``). The rules are validated first
    (400 ``invalid_rule`` with every issue); nothing is published."""
    if model_threshold is None:
        model_threshold = DEFAULT_MODEL_THRESHOLD
    content = pack(model_threshold=check_model_threshold(model_threshold))
    specs = parse_rules(content["rules"])
    parse_thresholds(content["thresholds"])
    service.validate_specs(specs)
    target = _rule_set(uow, tenant_id, rule_set, actor=actor)
    return service.create_version(uow, tenant_id, target.id, rules=content["rules"], actor=actor,
                                  thresholds=content["thresholds"],
                                  note=note or f"starter pack (model review band {model_threshold})")


def _rule_set(uow: UnitOfWork, tenant_id: str, name_or_id: str | None, *, actor: str) -> RuleSet:
    if name_or_id is not None and name_or_id.startswith("rs_"):
        return service.get_rule_set(uow, tenant_id, name_or_id)
    name = name_or_id or RULE_SET_NAME
    try:
        return service.find_rule_set(uow, tenant_id, name)
    except NotFound:
        if name_or_id is not None:
            raise
    return service.create_rule_set(uow, tenant_id, name=name, actor=actor, event_types=EVENT_TYPES,
                                   description="The starter pack: card testing, account takeover, promotion "
                                               "abuse, mule rings, model bands, lists and velocity.")
