"""Built-in jobs. Each module registers its jobs on import; add a domain's module to the imports below."""

from finloop.worker.jobs import ledger, platform

__all__ = ["ledger", "platform"]
