"""The worker: scheduled jobs by each tenant's business calendar, and the outbox drain."""
