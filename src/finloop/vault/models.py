"""Vault tables: wrapped data keys, and cards stored as ciphertext beside their masked description.

- ``vault_keys`` is global (not per tenant): a key encrypts many tenants' cards, and the associated
  data of every ciphertext names its tenant, so a key shared between tenants shares no plaintext.
  At most one key per purpose is active (a partial unique index backs the service's lock).
- ``cards`` never holds a card number, a CVC or a holder name in clear: the number and holder live
  only inside ``ciphertext``; ``last4``, brand, expiry and the keyed fingerprint are what may be shown.
  Deleting a card crypto-shreds it: ``key_id``, ``nonce`` and ``ciphertext`` become NULL, the masked
  record stays for history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import UTCDateTime


class VaultKey(Base):
    __tablename__ = "vault_keys"
    __table_args__ = (
        UniqueConstraint("purpose", "version"),
        Index("uq_vault_keys_one_active", "purpose", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # data | fingerprint
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # active | retired
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Card(Base):
    __tablename__ = "cards"
    __table_args__ = (
        Index("ix_cards_tenant_fingerprint", "tenant_id", "fingerprint"),
        Index("ix_cards_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # No foreign key: customers belong to the payments domain, which checks them before tokenizing.
    customer_id: Mapped[str | None] = mapped_column(String(40))
    brand: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(ForeignKey("vault_keys.id"), index=True)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
