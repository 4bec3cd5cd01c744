"""The double-entry ledger under every movement of money."""
