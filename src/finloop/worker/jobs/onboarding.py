"""Scheduled jobs of onboarding."""

from __future__ import annotations
