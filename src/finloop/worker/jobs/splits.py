"""Splits jobs: none. A payment is split in the transaction that records its success (real time), and
a refund is clawed back in the transaction that records it, so nothing waits for a schedule."""

from __future__ import annotations
