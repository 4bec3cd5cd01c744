"""Training the anti-fraud model: the labelled frame, the encoding, LightGBM, metrics and the registry row.

- ``encode_row`` turns a decision's velocity features and event into the model's input row; training and
  serving call the same function with the encoding stored on the model, so they cannot disagree.
- ``build_frame`` replays a labelled history in time order through the velocity and network features
  (``velocity.replay``, ``network.replay``: each event sees the features as they were at its time), no
  database needed.
- ``fit`` trains on the events before ``split_at`` and measures on those after (a time-based split: the
  model is judged on days it never saw). The operating threshold is the lowest 0..1000 score at which, on
  the last quarter of the training days scored out of sample, at most ``review_rate`` of events are
  flagged with at least ``target_precision``; precision and recall are measured at that threshold on the
  held-out days.
- ``train`` does both and stores a new challenger version in the registry.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.risk import velocity
from finloop.risk.ml import drift
from finloop.risk.ml.models import RiskModel
from finloop.risk.network import domain as network_domain
from finloop.risk.network import replay as network_replay
from finloop.sim.fraud import LabelledEvent

ALGORITHM = "lightgbm"
DEFAULT_NAME = "fraud"
#: Columns computed from the event itself (the velocity features follow them).
EVENT_COLUMNS = ("event.amount", "event.hour", "event.currency_code", "event.has_promo", "customer.age_days",
                 "customer.is_new", "device.is_new", "geo.ip_card_mismatch", "geo.ip_home_mismatch",
                 "amount.vs_customer_avg_30d")
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 10,
    "feature_fraction": 0.9, "bagging_fraction": 1.0, "lambda_l2": 1.0, "verbose": -1, "num_threads": 1,
    "deterministic": True, "force_row_wise": True, "feature_pre_filter": False}
DEFAULT_ROUNDS = 80
KEY_FEATURES = 5

#: Progress callback: (stage, completed, total).
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _section(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


#: The network and geo features the model reads (those not already an event column).
NETWORK_COLUMNS = tuple(name for name in network_domain.FEATURE_NAMES if name not in EVENT_COLUMNS)
#: Training sees a fraud label this long after the event (labels arrive later in real life): the network's
#: fraud counts of the replayed history never include an event's own, not yet known, label.
LABEL_DELAY = timedelta(days=2)


def new_encoding(currencies: Sequence[str]) -> dict[str, Any]:
    """The encoding stored with a model: the column order and the currency vocabulary (unknown → 0). Models
    trained before the network features have no ``network_columns`` and are encoded without them."""
    vocabulary = {c: i + 1 for i, c in enumerate(sorted(set(currencies)))}
    return {"event_columns": list(EVENT_COLUMNS), "velocity_columns": list(velocity.FEATURE_NAMES),
            "network_columns": list(NETWORK_COLUMNS), "currency": vocabulary}


def columns(encoding: Mapping[str, Any]) -> list[str]:
    return (list(encoding["event_columns"]) + list(encoding["velocity_columns"])
            + list(encoding.get("network_columns", ())))


def encode_row(encoding: Mapping[str, Any], features: Mapping[str, int], event: Mapping[str, Any]) -> list[float]:
    """The model input for one event (a float per column: model inputs, not money)."""
    customer = _section(event.get("customer"))
    device = _section(event.get("device"))
    amount = _int(event.get("amount"))
    ip_country, card_country = _text(event.get("ip_country")), _text(event.get("card_country"))
    home = _text(customer.get("country"))
    count = _int(features.get("customer.count.30d"))
    average = _int(features.get("customer.sum.30d")) // count if count else 0
    values = {
        "event.amount": amount,
        "event.hour": _int(event.get("hour")),
        "event.currency_code": encoding["currency"].get(_text(event.get("currency")).upper(), 0),
        "event.has_promo": int(bool(_text(event.get("promo_code")))),
        "customer.age_days": _int(customer.get("age_days")),
        "customer.is_new": int(customer.get("is_new") is True),
        "device.is_new": int(device.get("is_new") is True),
        "geo.ip_card_mismatch": int(bool(ip_country and card_country and ip_country != card_country)),
        "geo.ip_home_mismatch": int(bool(ip_country and home and ip_country != home)),
        "amount.vs_customer_avg_30d": (amount * 100 // average) if average > 0 else -1,
    }
    row = [float(values.get(name, 0)) for name in encoding["event_columns"]]
    row += [float(_int(features.get(name))) for name in encoding["velocity_columns"]]
    row += [float(_int(features.get(name))) for name in encoding.get("network_columns", ())]
    return row


@dataclass
class Frame:
    """A labelled training frame: one row per event, in time order."""

    x: np.ndarray
    y: np.ndarray
    at: list[datetime]
    patterns: list[str]
    encoding: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        return columns(self.encoding)


def replay_features(tenant_id: str, events: Sequence[LabelledEvent]) -> Iterator[dict[str, int]]:
    """Each event's velocity and network features as they were at its time (``events`` sorted by time), with
    fraud labels known ``LABEL_DELAY`` after their event."""
    replayed = velocity.replay(tenant_id, ((e.at, {**e.event, "type": e.event_type}) for e in events))
    marks = sorted((e.at + LABEL_DELAY, str(e.event.get("customer_id"))) for e in events
                   if e.fraud and e.event.get("customer_id") is not None)
    networked = network_replay.replay(tenant_id, ((e.at, e.event) for e in events), fraud_marks=marks)
    for features, linked in zip(replayed, networked, strict=True):
        yield {**features, **linked}


def build_frame(tenant_id: str, events: Sequence[LabelledEvent], *, progress: Progress = _quiet) -> Frame:
    """Replay ``events`` (sorted by time) through the velocity and the network features (``network.replay``,
    fraud labels known ``LABEL_DELAY`` after their event) and encode each as of its time."""
    if not events:
        raise InvalidRequest("No events to train on.", code="no_training_data", param="days")
    if any(later.at < earlier.at for earlier, later in itertools.pairwise(events)):
        raise InvalidRequest("Training events must be sorted by time.", code="unsorted_events", param="events")
    encoding = new_encoding([_text(e.event.get("currency")).upper() for e in events])
    rows: list[list[float]] = []
    total = len(events)
    for i, (labelled, features) in enumerate(zip(events, replay_features(tenant_id, events), strict=True)):
        rows.append(encode_row(encoding, features, labelled.event))
        if i % 500 == 0 or i == total - 1:
            progress("features", i + 1, total)
    return Frame(x=np.asarray(rows, dtype=np.float64), y=np.asarray([e.fraud for e in events], dtype=np.int8),
                 at=[e.at for e in events], patterns=[e.pattern for e in events], encoding=encoding)


#: Decision labels that count as fraud; every other decision (labelled or not) counts as normal.
FRAUD_LABELS = frozenset({"fraud_confirmed", "disputed"})
MAX_DECISION_ROWS = 500_000


def frame_from_decisions(uow: UnitOfWork, tenant_id: str, *, from_at: datetime, to_at: datetime,
                         event_type: str = "payment") -> Frame:
    """A labelled frame from the tenant's stored decisions of ``[from_at, to_at)``: each row from the
    features the decision stored (as they were when it was decided) and its event; labels
    ``fraud_confirmed`` and ``disputed`` (e.g. set when a case is closed as confirmed fraud) are fraud,
    everything else normal."""
    from sqlalchemy import select

    from finloop.risk.models import RiskDecision

    if from_at >= to_at:
        raise InvalidRequest("from is before to.", code="invalid_range", param="from")
    rows = uow.session.execute(
        select(RiskDecision.features, RiskDecision.event, RiskDecision.label, RiskDecision.decided_at)
        .where(RiskDecision.tenant_id == tenant_id, RiskDecision.event_type == event_type,
               RiskDecision.decided_at >= from_at, RiskDecision.decided_at < to_at)
        .order_by(RiskDecision.decided_at, RiskDecision.id).limit(MAX_DECISION_ROWS)).all()
    if not rows:
        raise InvalidRequest("No decisions to train on in this range.", code="no_training_data", param="from")
    encoding = new_encoding([_text((event or {}).get("currency")).upper() for _, event, _, _ in rows])
    labels = [label in FRAUD_LABELS for _, _, label, _ in rows]
    return Frame(x=np.asarray([encode_row(encoding, features or {}, event or {}) for features, event, _, _ in rows],
                              dtype=np.float64),
                 y=np.asarray(labels, dtype=np.int8), at=[at for _, _, _, at in rows],
                 patterns=["labelled" if fraud else "normal" for fraud in labels], encoding=encoding)


def to_score(probability: float) -> int:
    """A probability as an integer score 0..1000, rounded half up (rule: ``floor(p * 1000 + 0.5)``)."""
    return min(1000, max(0, int(probability * 1000 + 0.5)))


@dataclass
class Fitted:
    booster: Any
    threshold: int
    metrics: dict[str, Any]
    reference: dict[str, Any]
    params: dict[str, Any]


def fit(frame: Frame, *, split_at: datetime, seed: int = 1, review_rate: float = 0.05,
        target_precision: float = 0.6, rounds: int = DEFAULT_ROUNDS, progress: Progress = _quiet) -> Fitted:
    """Train on the rows before ``split_at``, measure on the rows at or after it. The threshold is chosen
    on the last quarter of the training days scored by a probe model trained on the days before them (out
    of sample, like the held-out days), then the model is refitted on every training day."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    if not 0 < review_rate < 1:
        raise InvalidRequest("review_rate is within (0, 1).", code="invalid_review_rate", param="review_rate")
    if not 0 < target_precision <= 1:
        raise InvalidRequest("target_precision is within (0, 1].", code="invalid_target_precision",
                             param="target_precision")
    if not 1 <= rounds <= 2000:
        raise InvalidRequest("rounds is 1-2000.", code="invalid_rounds", param="rounds")
    train_mask = np.asarray([at < split_at for at in frame.at])
    test_mask = ~train_mask
    y_train, y_test = frame.y[train_mask], frame.y[test_mask]
    for part, labels in (("training", y_train), ("held-out", y_test)):
        if len(set(labels.tolist())) < 2:
            raise InvalidRequest(f"The {part} days need both fraud and normal events: use more days.",
                                 code="no_training_data", param="days")
    params = {**DEFAULT_PARAMS, "seed": seed}
    names = _lgb_names(frame.columns)
    train_at = [at for at, keep in zip(frame.at, train_mask, strict=True) if keep]
    validation_mask = _validation_mask(train_at)
    x_train = frame.x[train_mask]

    def report(env: Any) -> None:
        progress("training", env.iteration + 1, rounds)

    threshold = 1000
    if validation_mask is not None and len(set(y_train[validation_mask].tolist())) == 2:
        probe = lgb.train(params, lgb.Dataset(x_train[~validation_mask], label=y_train[~validation_mask],
                                              feature_name=names), num_boost_round=rounds)
        validation_scores = np.asarray([to_score(p) for p in probe.predict(x_train[validation_mask])])
        threshold = operating_threshold(validation_scores, y_train[validation_mask], review_rate=review_rate,
                                        precision=target_precision)
    booster = lgb.train(params, lgb.Dataset(x_train, label=y_train, feature_name=names), num_boost_round=rounds,
                        callbacks=[report])
    train_scores = np.asarray([to_score(p) for p in booster.predict(x_train)])
    test_scores = np.asarray([to_score(p) for p in booster.predict(frame.x[test_mask])])
    flagged = test_scores >= threshold
    true_positive = int(np.sum(flagged & (y_test == 1)))
    metrics = {
        "auc": round(float(roc_auc_score(y_test, test_scores)), 4),
        "precision": round(true_positive / int(np.sum(flagged)), 4) if np.any(flagged) else 0.0,
        "recall": round(true_positive / int(np.sum(y_test == 1)), 4),
        "review_rate": round(float(np.mean(flagged)), 4),
        "target_review_rate": review_rate, "target_precision": target_precision,
        "train_rows": int(train_mask.sum()), "test_rows": int(test_mask.sum()),
        "train_fraud": int(y_train.sum()), "test_fraud": int(y_test.sum()),
        "recall_by_pattern": _recall_by_pattern(frame, test_mask, flagged),
    }
    gains = booster.feature_importance(importance_type="gain")
    key = [frame.columns[i] for i in np.argsort(-gains)[:KEY_FEATURES] if gains[i] > 0]
    train_x = frame.x[train_mask]
    reference = {"score": drift.reference(train_scores.tolist(), edges=drift.SCORE_EDGES),
                 "features": {name: drift.reference(train_x[:, frame.columns.index(name)].tolist())
                              for name in key}}
    return Fitted(booster=booster, threshold=threshold, metrics=metrics, reference=reference,
                  params={**params, "rounds": rounds})


def _lgb_names(names: Sequence[str]) -> list[str]:
    # LightGBM refuses some characters in feature names; the registry keeps the real names.
    return [f"f{i}" for i in range(len(names))]


def _recall_by_pattern(frame: Frame, test_mask: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    patterns = [p for p, keep in zip(frame.patterns, test_mask, strict=True) if keep]
    out: dict[str, float] = {}
    for pattern in sorted({p for p, label in zip(patterns, frame.y[test_mask], strict=True) if label}):
        hits = [bool(f) for p, f in zip(patterns, flagged, strict=True) if p == pattern]
        out[pattern] = round(sum(hits) / len(hits), 4)
    return out


def _validation_mask(train_at: Sequence[datetime]) -> np.ndarray | None:
    """The last quarter of the training days (None when training spans less than two days)."""
    first, last = train_at[0], train_at[-1]
    days = (last - first).days + 1
    if days < 2:
        return None
    cut = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days - max(1, days // 4))
    return np.asarray([at >= cut for at in train_at])


def operating_threshold(scores: np.ndarray, labels: np.ndarray, *, review_rate: float, precision: float) -> int:
    """The lowest score in 1..1000 at which at most ``review_rate`` of ``scores`` are at or above it and the
    precision among those is at least ``precision`` (1000 when none qualifies)."""
    for threshold in range(1, 1001):
        flagged = scores >= threshold
        n = int(np.sum(flagged))
        if n == 0:
            return threshold
        if n / len(scores) <= review_rate and int(np.sum(flagged & (labels == 1))) / n >= precision:
            return threshold
    return 1000


def train(uow: UnitOfWork, tenant_id: str, *, events: Sequence[LabelledEvent] | None = None,
          frame: Frame | None = None, actor: str,
          name: str = DEFAULT_NAME, seed: int = 1, review_rate: float = 0.05, target_precision: float = 0.6,
          test_share: float = 0.3,
          rounds: int = DEFAULT_ROUNDS, progress: Progress = _quiet) -> RiskModel:
    """Train on a labelled history (simulated ``events``, or a ``frame`` such as ``frame_from_decisions``)
    and store the result as a new challenger version of ``name``. The last ``test_share`` of the history's
    days are held out for the metrics."""
    from finloop.risk.ml.service import check_name

    name = check_name(name)
    if not 0 < test_share < 1:
        raise InvalidRequest("test_share is within (0, 1).", code="invalid_test_share", param="test_share")
    if (events is None) == (frame is None):
        raise InvalidRequest("Train on events or on a frame.", code="no_training_data", param="events")
    if frame is None:
        frame = build_frame(tenant_id, events or (), progress=progress)
    first, last = frame.at[0], frame.at[-1]
    days = max(1, (last - first).days + 1)
    held_out = max(1, round(days * test_share))
    split_at = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days - held_out)
    fitted = fit(frame, split_at=split_at, seed=seed, review_rate=review_rate,
                 target_precision=target_precision, rounds=rounds, progress=progress)
    text = fitted.booster.model_to_string()
    previous = uow.session.query(RiskModel.version).filter(
        RiskModel.tenant_id == tenant_id, RiskModel.name == name).order_by(RiskModel.version.desc()).first()
    row = RiskModel(
        id=uow.ids.new("risk_model"), tenant_id=tenant_id, name=name, version=(previous[0] + 1) if previous else 1,
        status="challenger", algorithm=ALGORITHM, model_text=text, digest=hashlib.sha256(text.encode()).hexdigest(),
        features=frame.columns, encoding=frame.encoding, threshold=fitted.threshold, metrics=fitted.metrics,
        params=fitted.params, reference=fitted.reference, data_from=first, data_to=last, split_at=split_at,
        drift=None, drift_at=None, created_by=actor[:60], created_at=uow.clock.now(), promoted_at=None,
        retired_at=None)
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.model.trained", object_type="risk_model",
                 object_id=row.id, after={"name": name, "version": row.version, "metrics": {
                     k: fitted.metrics[k] for k in ("auc", "precision", "recall")}, "threshold": row.threshold})
    return row
