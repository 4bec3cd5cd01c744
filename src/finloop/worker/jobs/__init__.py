"""Built-in jobs. Each module registers its jobs on import; add a domain's module to the imports below."""

from finloop.worker.jobs import (
    aml,
    clearing,
    credit,
    credit_collections,
    credit_debits,
    credit_outcomes,
    ledger,
    onboarding,
    payments,
    payouts,
    platform,
    reconciliation,
    risk,
    settlement,
    splits,
    wealth,
    webhooks,
)

__all__ = ["aml", "clearing", "credit", "credit_collections", "credit_debits", "credit_outcomes", "ledger",
           "onboarding", "payments", "payouts", "platform", "reconciliation", "risk", "settlement", "splits", "wealth",
           "webhooks"]
