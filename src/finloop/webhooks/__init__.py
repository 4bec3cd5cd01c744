"""Merchant webhooks: endpoints with event filters, Standard Webhooks signatures, deliveries through the outbox."""
