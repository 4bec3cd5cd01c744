"""Configuration from environment variables (prefix ``FINLOOP_``) and an optional env file.

The file is ``finloop.env`` in the working directory, or the path in ``FINLOOP_ENV_FILE``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///finloop.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FINLOOP_",
        env_file=os.environ.get("FINLOOP_ENV_FILE", "finloop.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    log_level: str = "INFO"
    log_json: bool = True
    #: How long a stored Idempotency-Key response is replayed (at least 24 hours).
    idempotency_ttl_seconds: int = 24 * 3600
    #: A key left in flight by a crashed request is released after this lease.
    idempotency_lease_seconds: int = 30
    #: Keys the HMAC under which a request is remembered beside its Idempotency-Key (the body may hold a
    #: card number). Unset: a key derived from the vault master key. Every process of a deployment
    #: must use the same one; changing it makes keys stored in the last ``idempotency_ttl_seconds``
    #: answer ``idempotency_key_reused`` to their retries.
    idempotency_hash_key: SecretStr | None = None
    #: How long a staff sign-in session lasts.
    session_ttl_seconds: int = 8 * 3600
    #: A console session also ends after this long without a request.
    console_idle_seconds: int = 30 * 60
    #: SQLite waits this long for the write lock before giving up.
    sqlite_busy_timeout_ms: int = 30_000
    #: The worker's polling interval.
    worker_poll_seconds: float = 1.0
    #: The address channels reach this deployment at (their notifications go to ``/v1/channels/<id>/notifications``).
    public_url: str = "http://127.0.0.1:8000"
    #: At most this many concurrent single transfers of one process are committed in one transaction
    #: (docs/adr/0004-group-commit.md); 0 commits each in its own.
    group_commit_max: int = Field(default=256, ge=0)
    #: Largest transfer batch accepted in one request.
    max_batch_size: int = 1000
    #: The card vault's master key (key-encryption key): 32 random bytes, base64. Production sets it
    #: (from a secret manager); without it the vault uses ``vault_key_file`` (development, the demo).
    vault_master_key: SecretStr | None = None
    #: Where the vault keeps a generated master key when ``vault_master_key`` is not set (created 0600).
    vault_key_file: Path = Path("finloop-vault.key")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
