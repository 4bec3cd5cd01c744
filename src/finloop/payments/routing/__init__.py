"""Routing: per-merchant strategies, success-rate windows, channel health and circuit breakers, stored decisions."""
