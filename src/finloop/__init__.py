"""finloop: fund infrastructure with a double-entry ledger under every movement of money."""

__version__ = "0.1.0"
