"""The accounts that hold what the platform owes its merchants and promoters, by name.

Every domain of clearing, splitting, settlement, payouts and reconciliation names these accounts
through the functions here, so a balance has one code wherever it is read or posted.

A party (a merchant or a promoter) has buckets, each a liability account in the payment's currency:
- ``pending``: split credits waiting for their settlement date;
- ``frozen``: held for the freeze period (a deposit) before it can settle;
- ``reserve``: the rolling reserve, held a number of days and then released;
- ``available``: settled, may be withdrawn or paid out.
What a party owes back (a claw-back after it was paid out, a lost dispute) is an asset,
``assets:<kind>_receivable:<id>``, never a negative liability.
"""

from __future__ import annotations

from enum import StrEnum


class PartyKind(StrEnum):
    MERCHANT = "merchant"
    PROMOTER = "promoter"


class Bucket(StrEnum):
    PENDING = "pending"
    FROZEN = "frozen"
    RESERVE = "reserve"
    AVAILABLE = "available"


def party_account_code(kind: PartyKind, party_id: str, bucket: Bucket) -> str:
    return f"liabilities:{kind.value}:{party_id}:{bucket.value}"


def party_receivable_code(kind: PartyKind, party_id: str) -> str:
    # The disputes module already books merchants' shortfalls here.
    return f"assets:{kind.value}_receivable:{party_id}"


def commission_code(shard: int) -> str:
    """The platform's commission income, split into sub-accounts like the other hot accounts."""
    return f"income:commission:{shard}"


def bank_account_code(bank_account: str) -> str:
    """A bank account of the platform, e.g. the custody (reserve) account ``assets:bank:custody``."""
    return f"assets:bank:{bank_account}"


#: The segregated account where customer and merchant money is safeguarded.
CUSTODY_BANK_ACCOUNT = "custody"
