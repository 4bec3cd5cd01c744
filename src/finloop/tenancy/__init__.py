"""Tenants, API keys, staff users, sessions, roles and maker-checker approvals."""
