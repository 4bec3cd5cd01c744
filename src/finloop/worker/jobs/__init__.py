"""Built-in jobs. Each module registers its jobs on import; add a domain's module to the imports below."""

from finloop.worker.jobs import ledger, payments, platform, webhooks

__all__ = ["ledger", "payments", "platform", "webhooks"]
