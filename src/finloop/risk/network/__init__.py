"""The association network and geo checks: customers linked by what they share, components as features."""
