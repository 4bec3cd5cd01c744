"""Tables of the borrower portal."""

from __future__ import annotations
