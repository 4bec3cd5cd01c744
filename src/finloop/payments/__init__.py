"""Payments: merchants, customers, channels, payment intents, attempts, refunds, notifications."""
