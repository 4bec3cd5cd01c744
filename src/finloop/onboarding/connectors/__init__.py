"""Verification connectors: identity documents, liveness and company registries behind small interfaces."""
