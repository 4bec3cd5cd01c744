"""Database layer: engines, unit of work, outbox, idempotency store and migrations."""
