"""The association network and geo checks: customers linked by what they share, components as features.

- ``service.observe`` links a decided event's customer to its values and returns the network and geo
  features (``domain.FEATURE_NAMES``); ``replay.replay`` computes the same features in memory for a history.
- ``service.mark_fraud`` / ``unmark_fraud`` / ``label_changed``: known fraud per customer and component.
- ``service.rebuild`` recomputes the components from the links; ``service.view`` reads a customer's component.
See docs/risk-network.md.
"""
