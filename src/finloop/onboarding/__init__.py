"""Onboarding (KYC / KYB): identity and business verification, screening, risk tiers and periodic review."""
