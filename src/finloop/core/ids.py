"""Prefixed, sortable public ids such as ``je_01JD3...``.

The body is a ULID (48-bit millisecond time + 80 random bits, Crockford base32), so ids sort by
creation time as strings and as database keys. Ids made within one millisecond by one generator are
monotonic: the random part is incremented instead of redrawn.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = {
    "tenant": "ten",
    "api_key": "key",
    "user": "usr",
    "session": "ses",
    "account": "acc",
    "entry": "je",
    "hold": "hld",
    "batch": "bat",
    "approval": "apr",
    "period": "per",
    "job_run": "job",
    "outbox": "evt",
    "request": "req",
    "merchant": "mer",
    "customer": "cus",
    "channel": "chn",
    "payment": "pay",
    "attempt": "att",
    "refund": "re",
    "routing_decision": "rtd",
    "routing_config": "rtc",
    "webhook_endpoint": "we",
    "webhook_message": "msg",
    # the borrower portal
    "portal_message": "pmsg",
    "portal_link": "plk",
    "webhook_delivery": "whd",
    "card": "card",
    "vault_key": "vk",
    "dispute": "dp",
    "payout": "po",
    "notification": "ntf",
    # clearing and splits
    "fee_schedule": "fs",
    "clearing_batch": "clb",
    "split_rule": "spr",
    "promoter": "prm",
    "payment_split": "psp",
    "merchant_link": "mln",
    # settlement and payouts
    "settlement_profile": "stp",
    "settlement_batch": "stb",
    "reserve": "rsv",
    "fx_rate": "fxr",
    "merchant_payout": "mpo",
    "payout_account": "pac",
    "payout_schedule": "psc",
    # reconciliation
    "recon_file": "rcf",
    "recon_mapping": "rcm",
    "recon_run": "rcr",
    "recon_match": "rmt",
    "discrepancy": "dsc",
    "safeguarding_check": "sgc",
    # wealth
    "fund": "fund",
    "fund_price": "fpx",
    "fund_order": "fo",
    "sweep": "swp",
    # risk
    "rule_set": "rs",
    "rule_set_version": "rsn",
    "risk_decision": "dec",
    "risk_list_entry": "rle",
    "risk_case": "case",
    "aml_alert": "aml",
    "screening": "scr",
    "watchlist_entry": "wle",
    "risk_model": "mdl",
    "kyc_profile": "kyc",
    "verification": "vrf",
    "credit_model": "cmd",
    "credit_score": "csc",
    "bureau_report": "bur",
    "credit_consent": "cns",
    "applicant": "apl",
    "loan_product": "lpr",
    "credit_line": "cln",
    "credit_limit_change": "clc",
    "loan_application": "lap",
    "loan_contract": "lct",
    "funding_source": "fsr",
    "loan": "loan",
    "disbursement": "dsb",
    "repayment": "rpy",
    "schedule_change": "sch",
    "collection_case": "col",
    "collection_action": "cac",
    "promise_to_pay": "ptp",
    "reminder": "rmd",
    "bureau_export": "bex",
    "direct_debit": "ddb",
    "debit_mandate": "mdt",
    "loan_outcome": "lou",
}


#: Every 10-bit value as its two base32 characters: a ULID is 13 table lookups, not 26 shifts.
_PAIRS = [_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024)]


def _encode(value: int) -> str:
    """The 26 Crockford base32 characters of a 128-bit value (read as 130 bits, the top two zero)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])


class IdFactory:
    """Makes ULID-bodied ids; inject one with a fixed clock and entropy for repeatable tests."""

    def __init__(self, now_ms: Callable[[], int] | None = None,
                 entropy: Callable[[int], bytes] = os.urandom) -> None:
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._entropy = entropy
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def ulid(self) -> str:
        with self._lock:
            now = self._now_ms()
            if now <= self._last_ms:
                now = self._last_ms
                self._last_random += 1
                if self._last_random >= 1 << 80:
                    # Wrapping the random part to zero would sort this id before the last one;
                    # borrowing the next millisecond keeps the order.
                    now += 1
                    self._last_random = 0
            else:
                self._last_random = int.from_bytes(self._entropy(10), "big")
            self._last_ms = now
            return _encode((now << 80) | self._last_random)

    def new(self, kind: str) -> str:
        return f"{PREFIXES[kind]}_{self.ulid()}"


_default = IdFactory()


def new_id(kind: str) -> str:
    """A fresh public id for ``kind`` (a key of PREFIXES)."""
    return _default.new(kind)


def has_prefix(value: str, kind: str) -> bool:
    return value.startswith(PREFIXES[kind] + "_")
