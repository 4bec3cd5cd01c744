"""The Stripe sandbox: ``/v1`` PaymentIntents, Refunds, search, report runs and signed webhooks over the engine.

Invariants owned here:
- every request needs the channel's ``Authorization: Bearer sk_test_…``; every webhook carries a
  ``Stripe-Signature`` made with the channel's ``whsec_…`` secret, which the official library accepts;
- ``Idempotency-Key`` behaves as Stripe's: the same key with the same parameters replays the saved
  answer (``Idempotent-Replayed: true``), with other parameters it is a 400 ``idempotency_error``;
  answers that never reached the client (timeout, outage) are not saved, so a retry learns the truth;
- Stripe ids are the engine's references with Stripe's prefixes (``pi_``/``ch_``/``txn_`` + channel_ref,
  ``re_`` + channel_refund_ref), so they are stable across restarts of the router;
- card numbers go to the engine (its test cards) and nowhere else: objects show the last four digits only;
- the router only translates: every decision is the engine's. Timeouts answer 504, outages 503.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from finloop.core.clock import Clock, SystemClock
from finloop.payments.connectors.base import BillFile, ChannelConfig
from finloop.payments.connectors.sandbox.engine import (
    BillLine,
    PendingNotification,
    RefundRecord,
    SandboxEngine,
    SandboxFailure,
    Transaction,
    TxStatus,
)
from finloop.payments.connectors.stripe import wire
from finloop.payments.connectors.stripe.signing import SIGNATURE_HEADER, build_header

API_VERSION = "2024-06-20"
_SEARCH = re.compile(r"""^\s*metadata\[['"]reference['"]\]\s*:\s*(['"])(?P<value>(?:\\.|(?!\1).)*)\1\s*$""")
_DECLINE_CODES = {"card_declined": "generic_decline", "risk_rejected": "fraudulent"}


def secret_key(channel: str) -> str:
    return "sk_test_" + hashlib.sha256(f"finloop-sandbox:{channel}".encode()).hexdigest()[:24]


def webhook_secret(channel: str) -> str:
    return "whsec_" + hashlib.sha256(f"finloop-sandbox-webhook:{channel}".encode()).hexdigest()[:32]


def _unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


class _StripeError(Exception):
    def __init__(self, status: int, type_: str, code: str | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message, **extra}
        if code:
            self.body["code"] = code


class StripeSandbox:
    """The ``SandboxProvider`` for Stripe."""

    name = "stripe"

    def __init__(self, clock: Clock | None = None) -> None:
        # Webhooks are signed when sent, in wall-clock time (what the receiver's tolerance is checked against),
        # not in the engine's simulated time.
        self.clock: Clock = clock or SystemClock()
        self._engines: dict[str, SandboxEngine] = {}
        self._capture_methods: dict[tuple[str, str], str] = {}
        self._notify_urls: dict[str, str] = {}   # channel -> its registered webhook endpoint

    def channel_config(self, channel: str, base_url: str) -> ChannelConfig:
        return ChannelConfig(code=channel, provider="stripe", base_url=base_url,
                             settings={"api_version": API_VERSION},
                             credentials={"secret_key": secret_key(channel), "webhook_secret": webhook_secret(channel)})

    # -------------------------------------------------------------------------------- objects

    def payment_intent(self, tx: Transaction, *, expand: Sequence[str] = ()) -> dict[str, Any]:
        currency = tx.currency.lower()
        status = {
            TxStatus.WAITING: "requires_action", TxStatus.AUTHORIZED: "requires_capture",
            TxStatus.SUCCEEDED: "succeeded", TxStatus.REFUNDED: "succeeded",
            TxStatus.FAILED: "requires_payment_method", TxStatus.CLOSED: "canceled",
        }[tx.status]
        intent: dict[str, Any] = {
            "id": f"pi_{tx.channel_ref}", "object": "payment_intent",
            "amount": wire.to_stripe_amount(tx.amount, tx.currency),
            "amount_capturable": wire.to_stripe_amount(tx.amount, tx.currency)
            if tx.status is TxStatus.AUTHORIZED else 0,
            "amount_received": wire.to_stripe_amount(tx.captured, tx.currency),
            "capture_method": self._capture_methods.get((tx.channel, tx.reference), "automatic"),
            "client_secret": f"pi_{tx.channel_ref}_secret_sandbox",
            "created": _unix(tx.created_at), "currency": currency, "livemode": False,
            "metadata": {"reference": tx.reference}, "payment_method": f"pm_{tx.channel_ref}",
            "payment_method_types": ["card"], "status": status, "next_action": None,
            "canceled_at": _unix(tx.closed_at), "last_payment_error": None,
            "latest_charge": None if tx.status in (TxStatus.WAITING, TxStatus.CLOSED) and tx.paid_at is None
            else f"ch_{tx.channel_ref}",
        }
        if tx.status is TxStatus.FAILED:
            intent["last_payment_error"] = self._payment_error(tx.error_kind or "declined", tx.error_code or "")
        if tx.status is TxStatus.WAITING:
            intent["next_action"] = {"type": "redirect_to_url",
                                     "redirect_to_url": {"url": f"https://hooks.stripe.com/3d_secure/{tx.channel_ref}",
                                                         "return_url": None}}
        if intent["latest_charge"] and any(path.endswith("latest_charge") or "latest_charge." in path
                                           for path in expand):
            with_bt = any("balance_transaction" in path for path in expand)
            intent["latest_charge"] = self.charge(tx, expand_balance_transaction=with_bt)
        return intent

    @staticmethod
    def _payment_error(kind: str, code: str) -> dict[str, Any]:
        if kind == "declined":
            stripe_code = "expired_card" if code == "expired_card" else "card_declined"
            return {"type": "card_error", "code": stripe_code, "decline_code": _DECLINE_CODES.get(code, code),
                    "message": "Your card was declined."}
        return {"type": "card_error", "code": "processing_error",
                "message": "An error occurred while processing your card. Try again in a little bit."}

    def charge(self, tx: Transaction, *, refunds: Sequence[RefundRecord] = (),
               expand_balance_transaction: bool = False) -> dict[str, Any]:
        charge: dict[str, Any] = {
            "id": f"ch_{tx.channel_ref}", "object": "charge",
            "amount": wire.to_stripe_amount(tx.amount, tx.currency),
            "amount_captured": wire.to_stripe_amount(tx.captured, tx.currency),
            "amount_refunded": wire.to_stripe_amount(tx.refunded, tx.currency),
            "captured": tx.captured > 0, "refunded": tx.status is TxStatus.REFUNDED,
            "paid": tx.status in (TxStatus.AUTHORIZED, TxStatus.SUCCEEDED, TxStatus.REFUNDED),
            "status": "failed" if tx.status is TxStatus.FAILED else "succeeded",
            "created": _unix(tx.paid_at or tx.created_at), "currency": tx.currency.lower(),
            "payment_intent": f"pi_{tx.channel_ref}", "metadata": {"reference": tx.reference},
            "balance_transaction": f"txn_{tx.channel_ref}" if tx.captured else None,
            "payment_method_details": {"type": "card", "card": {"last4": tx.card_last4, "brand": "visa"}},
        }
        if expand_balance_transaction and tx.captured:
            charge["balance_transaction"] = {
                "id": f"txn_{tx.channel_ref}", "object": "balance_transaction",
                "amount": wire.to_stripe_amount(tx.captured, tx.currency),
                "fee": wire.to_stripe_amount(tx.fee, tx.currency),
                "net": wire.to_stripe_amount(tx.captured - tx.fee, tx.currency), "currency": tx.currency.lower(),
                "type": "charge", "reporting_category": "charge", "source": f"ch_{tx.channel_ref}",
                "created": _unix(tx.paid_at)}
        if refunds:
            charge["refunds"] = {"object": "list", "data": [self.refund_object(r) for r in refunds],
                                 "has_more": False, "url": f"/v1/charges/ch_{tx.channel_ref}/refunds"}
        return charge

    @staticmethod
    def refund_object(record: RefundRecord) -> dict[str, Any]:
        status = {"processing": "pending", "succeeded": "succeeded", "failed": "failed"}.get(record.status, "pending")
        refund: dict[str, Any] = {
            "id": f"re_{record.channel_refund_ref}", "object": "refund",
            "amount": wire.to_stripe_amount(record.amount, record.currency), "currency": record.currency.lower(),
            "charge": f"ch_{record.channel_ref}", "payment_intent": f"pi_{record.channel_ref}",
            "created": _unix(record.created_at), "status": status,
            "metadata": {"reference": record.refund_reference, "payment_reference": record.reference},
            "balance_transaction": f"txn_{record.channel_refund_ref}" if record.status == "succeeded" else None,
        }
        if record.status == "failed":
            refund["failure_reason"] = record.error_code or "unknown"
        return refund

    @staticmethod
    def dispute_object(dispute: Mapping[str, Any]) -> dict[str, Any]:
        currency = str(dispute["currency"])
        due = datetime.fromisoformat(str(dispute["evidence_due_by"]))
        opened = datetime.fromisoformat(str(dispute.get("opened_at") or dispute["evidence_due_by"]))
        return {
            "id": dispute["id"], "object": "dispute",
            "amount": wire.to_stripe_amount(int(dispute["amount"]), currency), "currency": currency.lower(),
            "charge": f"ch_{dispute['channel_ref']}", "payment_intent": f"pi_{dispute['channel_ref']}",
            "reason": dispute["reason"], "status": dispute.get("status", "needs_response"),
            "created": _unix(opened), "metadata": {}, "is_charge_refundable": False, "livemode": False,
            "evidence_details": {"due_by": _unix(due), "has_evidence": False, "past_due": False,
                                 "submission_count": 0},
        }

    # -------------------------------------------------------------------------------- webhooks

    def event(self, item: PendingNotification) -> dict[str, Any]:
        engine = self._engines.get(item.channel)
        if item.kind == "dispute" and item.dispute is not None:
            closed = item.dispute.get("status") in ("won", "lost")
            kind = "charge.dispute.closed" if closed else "charge.dispute.created"
            obj = self.dispute_object(item.dispute)
        elif item.kind == "refund" and item.refund is not None:
            record = item.refund
            tx = engine.find(item.channel, reference=record.reference) if engine is not None else item.transaction
            if record.status == "succeeded" and tx is not None:
                kind, obj = "charge.refunded", self.charge(tx, refunds=[record])
            else:
                kind, obj = "refund.updated", self.refund_object(record)
        elif item.transaction is not None:
            tx = item.transaction
            kind = {
                TxStatus.SUCCEEDED: "payment_intent.succeeded", TxStatus.REFUNDED: "payment_intent.succeeded",
                TxStatus.AUTHORIZED: "payment_intent.amount_capturable_updated",
                TxStatus.FAILED: "payment_intent.payment_failed", TxStatus.CLOSED: "payment_intent.canceled",
                TxStatus.WAITING: "payment_intent.requires_action",
            }[tx.status]
            obj = self.payment_intent(tx)
        else:
            raise LookupError(f"notification {item.id} has nothing to describe")
        return {
            "id": f"evt_{item.id}", "object": "event", "api_version": API_VERSION, "created": _unix(item.due_at),
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": kind,
        }

    def notification(self, item: PendingNotification) -> tuple[dict[str, str], bytes]:
        payload = json.dumps(self.event(item), separators=(",", ":")).encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            SIGNATURE_HEADER: build_header(webhook_secret(item.channel), payload, timestamp),
        }
        return headers, payload

    # -------------------------------------------------------------------------------- bill

    def bill(self, lines: Sequence[BillLine], business_date: date, channel: str,
             columns: Sequence[str] = wire.REPORT_COLUMNS) -> BillFile:
        engine = self._engines.get(channel)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for line in lines:
            if line.kind == "payment":
                gross, fee = line.amount, line.fee
                intent_ref = line.channel_ref
                row = {"balance_transaction_id": f"txn_{line.channel_ref}", "reporting_category": "charge",
                       "source_id": f"ch_{line.channel_ref}", "description": f"Payment {line.reference}",
                       "refund_metadata[reference]": ""}
            else:
                tx = engine.find(channel, reference=line.reference) if engine is not None else None
                intent_ref = tx.channel_ref if tx is not None else ""
                gross, fee = -line.amount, -line.fee
                row = {"balance_transaction_id": f"txn_{line.channel_ref}", "reporting_category": "refund",
                       "source_id": f"re_{line.channel_ref}", "description": f"Refund {line.refund_reference}",
                       "refund_metadata[reference]": line.refund_reference or ""}
            row.update({
                "created_utc": line.at.astimezone(UTC).strftime(wire.REPORT_TIME_FORMAT),
                "available_on_utc": (line.at + timedelta(days=2)).astimezone(UTC).strftime(wire.REPORT_TIME_FORMAT),
                "currency": line.currency.lower(), "gross": wire.to_major(gross, line.currency),
                "fee": wire.to_major(fee, line.currency), "net": wire.to_major(gross - fee, line.currency),
                "payment_intent_id": f"pi_{intent_ref}" if intent_ref else "",
                "payment_metadata[reference]": line.reference,
            })
            writer.writerow([row.get(column, "") for column in columns])
        return BillFile(channel=channel, business_date=business_date,
                        filename=f"balance_change_from_activity_{business_date:%Y%m%d}.csv",
                        media_type=wire.REPORT_MEDIA_TYPE, content=out.getvalue().encode("utf-8"))

    # -------------------------------------------------------------------------------- the API

    def router(self, engine: SandboxEngine, channel: str) -> APIRouter:
        self._engines[channel] = engine
        api = APIRouter()
        saved: dict[str, tuple[str, int, dict[str, Any]]] = {}
        runs: dict[str, dict[str, Any]] = {}
        key = secret_key(channel)

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization", "") == f"Bearer {key}"

        async def form(request: Request) -> dict[str, Any]:
            body = (await request.body()).decode("utf-8", "replace")
            return wire.decode_form(parse_qsl(body, keep_blank_values=True))

        async def handle(request: Request, work: Any, *, idempotent: bool = False) -> Response:
            if not authorised(request):
                return JSONResponse({"error": {"type": "invalid_request_error",
                                               "message": "Invalid API Key provided."}}, status_code=401)
            data = (await form(request) if request.method == "POST"
                    else wire.decode_form(request.query_params.multi_items()))
            idem = request.headers.get("idempotency-key") if idempotent else None
            fingerprint = hashlib.sha256(json.dumps([request.url.path, data], sort_keys=True).encode()).hexdigest()
            if idem is not None and idem in saved:
                print_, status, body = saved[idem]
                if print_ != fingerprint:
                    return JSONResponse({"error": {"type": "idempotency_error", "message":
                                                   "Keys for idempotent requests can only be used with the same "
                                                   "parameters they were first used with."}}, status_code=400)
                return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
            try:
                status, body = 200, work(data, idem)
            except _StripeError as error:
                status, body = error.status, {"error": error.body}
            except SandboxFailure as failure:
                if failure.kind == "timeout":
                    return Response(status_code=504)
                if failure.kind == "unavailable":
                    return JSONResponse({"error": {"type": "api_error", "message": failure.message}}, status_code=503)
                mapped = self._failure(failure, engine, channel, data)
                status, body = mapped.status, {"error": mapped.body}
            if idem is not None and status < 500:
                saved[idem] = (fingerprint, status, body)
            return JSONResponse(body, status_code=status)

        def tx_by_intent(intent_id: str) -> Transaction:
            tx = (engine.find(channel, channel_ref=intent_id.removeprefix("pi_"))
                  if intent_id.startswith("pi_") else None)
            if tx is None:
                raise _StripeError(404, "invalid_request_error", "resource_missing",
                                   f"No such payment_intent: '{intent_id}'", param="intent")
            found = engine.query(channel, tx.reference)  # latency and outages apply to reads too
            assert found is not None
            return found

        def create_intent(data: dict[str, Any], idem: str | None) -> dict[str, Any]:
            amount_text, currency = data.get("amount"), str(data.get("currency", "")).upper()
            if not str(amount_text or "").isdigit() or not currency:
                raise _StripeError(400, "invalid_request_error", "parameter_missing",
                                   "amount and currency are required")
            try:
                amount = wire.from_stripe_amount(int(str(amount_text)), currency)
            except ValueError as error:
                raise _StripeError(400, "invalid_request_error", "amount_invalid", str(error),
                                   param="amount") from error
            metadata = _dict(data.get("metadata"))
            reference = str(metadata.get("reference") or idem or "")
            if not reference:
                raise _StripeError(400, "invalid_request_error", "parameter_missing",
                                   "the sandbox needs metadata[reference] or an Idempotency-Key")
            pm = data.get("payment_method_data")
            card = pm.get("card") if isinstance(pm, dict) else None
            number = str(card.get("number", "")) if isinstance(card, dict) else ""
            if not number.isdigit():
                raise _StripeError(402, "card_error", "incorrect_number", "Your card number is incorrect.",
                                   param="payment_method_data[card][number]")
            manual = data.get("capture_method") == "manual"
            self._capture_methods[(channel, reference)] = "manual" if manual else "automatic"
            tx = engine.pay(channel, reference=reference, amount=amount, currency=currency, method="card",
                            capture=not manual, notify_url=self._notify_urls.get(channel), card_number=number)
            return self.payment_intent(tx)

        @api.post("/v1/payment_intents")
        async def post_intent(request: Request) -> Response:
            return await handle(request, create_intent, idempotent=True)

        @api.get("/v1/payment_intents/search")
        async def search(request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                match = _SEARCH.match(str(data.get("query", "")))
                if match is None:
                    raise _StripeError(400, "invalid_request_error", "parameter_invalid_string",
                                       "the sandbox searches metadata['reference']:'<value>' only", param="query")
                reference = re.sub(r"\\(.)", r"\1", match.group("value"))
                tx = engine.query(channel, reference)
                expand = _expand(data)
                found = [self.payment_intent(tx, expand=[e.removeprefix("data.") for e in expand])] if tx else []
                return {"object": "search_result", "data": found, "has_more": False, "next_page": None,
                        "url": "/v1/payment_intents/search"}
            return await handle(request, work)

        @api.get("/v1/payment_intents/{intent_id}")
        async def get_intent(intent_id: str, request: Request) -> Response:
            return await handle(request, lambda data, _: self.payment_intent(tx_by_intent(intent_id),
                                                                             expand=_expand(data)))

        @api.post("/v1/payment_intents/{intent_id}/capture")
        async def capture(intent_id: str, request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                tx = tx_by_intent(intent_id)
                raw = data.get("amount_to_capture")
                amount = tx.amount if raw is None else wire.from_stripe_amount(int(str(raw)), tx.currency)
                return self.payment_intent(engine.capture(channel, tx.reference, amount))
            return await handle(request, work, idempotent=True)

        @api.post("/v1/payment_intents/{intent_id}/cancel")
        async def cancel(intent_id: str, request: Request) -> Response:
            return await handle(request, lambda data, _: self.payment_intent(
                engine.close(channel, tx_by_intent(intent_id).reference)), idempotent=True)

        @api.post("/v1/refunds")
        async def post_refund(request: Request) -> Response:
            def work(data: dict[str, Any], idem: str | None) -> dict[str, Any]:
                tx = tx_by_intent(str(data.get("payment_intent", "")))
                raw = data.get("amount")
                amount = tx.captured - tx.refunded if raw is None else wire.from_stripe_amount(int(str(raw)),
                                                                                               tx.currency)
                metadata = _dict(data.get("metadata"))
                refund_reference = str(metadata.get("reference") or idem or f"{tx.reference}-refund")
                record = engine.refund(channel, reference=tx.reference, refund_reference=refund_reference,
                                       amount=amount, notify_url=None)
                return self.refund_object(record)
            return await handle(request, work, idempotent=True)

        @api.get("/v1/refunds")
        async def list_refunds(request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                tx = tx_by_intent(str(data.get("payment_intent", "")))
                found = [self.refund_object(r) for r in engine.refunds(channel) if r.reference == tx.reference]
                found.sort(key=lambda r: (-int(r["created"] or 0), r["id"]))
                limit = int(str(data.get("limit") or 10))
                return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                        "url": "/v1/refunds"}
            return await handle(request, work)

        @api.get("/v1/refunds/{refund_id}")
        async def get_refund(refund_id: str, request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                for record in engine.refunds(channel):
                    if f"re_{record.channel_refund_ref}" == refund_id:
                        return self.refund_object(record)
                raise _StripeError(404, "invalid_request_error", "resource_missing", f"No such refund: '{refund_id}'")
            return await handle(request, work)

        @api.post("/v1/reporting/report_runs")
        async def create_run(request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                if data.get("report_type") != wire.REPORT_TYPE:
                    raise _StripeError(400, "invalid_request_error", "parameter_invalid",
                                       f"the sandbox serves {wire.REPORT_TYPE} only", param="report_type")
                parameters = _dict(data.get("parameters"))
                try:
                    start = int(str(parameters.get("interval_start")))
                    end = int(str(parameters.get("interval_end")))
                except ValueError as error:
                    raise _StripeError(400, "invalid_request_error", "parameter_missing",
                                       "interval_start and interval_end are unix times") from error
                if end - start != 86400 or start % 86400:
                    raise _StripeError(400, "invalid_request_error", "parameter_invalid",
                                       "the sandbox reports whole UTC days")
                if end > int(engine.clock.now().timestamp()):
                    raise _StripeError(400, "invalid_request_error", "data_not_available",
                                       "interval_end is after the data available")
                columns = parameters.get("columns")
                run_id = "frr_" + hashlib.sha256(f"{channel}:{start}:{columns}".encode()).hexdigest()[:24]
                day = datetime.fromtimestamp(start, UTC).date()
                chosen = [str(c) for c in columns] if isinstance(columns, list) and columns else \
                    list(wire.REPORT_COLUMNS)
                runs[run_id] = {"day": day, "columns": chosen}
                return run_object(request, run_id, start, end)
            return await handle(request, work)

        def run_object(request: Request, run_id: str, start: int, end: int) -> dict[str, Any]:
            prefix = str(request.url).split("?", 1)[0].split("/v1/", 1)[0]
            file_id = "file_" + run_id.removeprefix("frr_")
            return {"id": run_id, "object": "reporting.report_run", "report_type": wire.REPORT_TYPE,
                    "status": "succeeded", "livemode": False,
                    "parameters": {"interval_start": start, "interval_end": end},
                    "result": {"id": file_id, "object": "file", "purpose": "finance_report_run", "type": "csv",
                               "filename": f"{file_id}.csv",
                               "url": f"{prefix}/v1/files/{file_id}/contents"}}

        @api.get("/v1/reporting/report_runs/{run_id}")
        async def get_run(run_id: str, request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                run = runs.get(run_id)
                if run is None:
                    raise _StripeError(404, "invalid_request_error", "resource_missing", f"No such run: '{run_id}'")
                start = int(datetime(run["day"].year, run["day"].month, run["day"].day, tzinfo=UTC).timestamp())
                return run_object(request, run_id, start, start + 86400)
            return await handle(request, work)

        @api.post("/v1/webhook_endpoints")
        async def webhook_endpoint(request: Request) -> Response:
            def work(data: dict[str, Any], _: str | None) -> dict[str, Any]:
                url = str(data.get("url") or "")
                if not url.startswith(("http://", "https://")):
                    raise _StripeError(400, "invalid_request_error", "url_invalid", "url must be http(s)",
                                       param="url")
                self.set_webhook_url(channel, url)
                events = data.get("enabled_events") if isinstance(data.get("enabled_events"), list) else ["*"]
                return {"id": "we_" + hashlib.sha256(url.encode()).hexdigest()[:24], "object": "webhook_endpoint",
                        "url": url, "enabled_events": events, "status": "enabled", "livemode": False,
                        "secret": webhook_secret(channel)}
            return await handle(request, work)

        @api.get("/v1/files/{file_id}/contents")
        def file_contents(file_id: str, request: Request) -> Response:
            if not authorised(request):
                return JSONResponse({"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
                                    status_code=401)
            run = runs.get("frr_" + file_id.removeprefix("file_"))
            if run is None:
                return JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                               "message": f"No such file: '{file_id}'"}}, status_code=404)
            bill = self.bill(engine.bill(channel, run["day"]), run["day"], channel, run["columns"])
            return Response(bill.content, media_type=bill.media_type,
                            headers={"content-disposition": f'attachment; filename="{bill.filename}"'})

        return api

    # -------------------------------------------------------------------------------- internals

    def set_webhook_url(self, channel: str, url: str) -> None:
        """Stripe sends events to the account's registered endpoint, not to a URL given per payment:
        register the channel's endpoint here or with ``POST /v1/webhook_endpoints``."""
        self._notify_urls[channel] = url

    def _failure(self, failure: SandboxFailure, engine: SandboxEngine, channel: str,
                 data: Mapping[str, Any]) -> _StripeError:
        if failure.kind == "declined":
            intent = self._failed_intent(engine, channel, data)
            error = self._payment_error("declined", failure.code)
            return _StripeError(402, "card_error", error["code"], error["message"],
                                decline_code=error["decline_code"], payment_intent=intent)
        if failure.kind == "error":
            if failure.code == "rate_limited":
                return _StripeError(429, "invalid_request_error", "rate_limit",
                                    "Too many requests hit the API too quickly.")
            if failure.code in ("processing_error", "issuer_unavailable"):
                return _StripeError(402, "card_error", "processing_error",
                                    self._payment_error("error", failure.code)["message"],
                                    payment_intent=self._failed_intent(engine, channel, data))
            return _StripeError(500, "api_error", None, "An unknown error occurred.")
        codes = {"not_found": (404, "resource_missing"), "invalid_state": (400, "payment_intent_unexpected_state"),
                 "refund_exceeds_captured": (400, "amount_too_large"), "invalid_amount": (400, "amount_too_large"),
                 "duplicate_reference": (400, "idempotency_key_in_use")}
        status, code = codes.get(failure.code, (400, "parameter_invalid"))
        return _StripeError(status, "invalid_request_error", code, failure.message)

    def _failed_intent(self, engine: SandboxEngine, channel: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        metadata = data.get("metadata")
        reference = metadata.get("reference") if isinstance(metadata, dict) else None
        tx = engine.find(channel, reference=str(reference)) if reference else None
        return self.payment_intent(tx) if tx is not None else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _expand(data: Mapping[str, Any]) -> list[str]:
    value = data.get("expand")
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)] if value else []


def make_sandbox() -> StripeSandbox:
    return StripeSandbox()
