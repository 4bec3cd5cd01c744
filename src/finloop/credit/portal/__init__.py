"""The borrower portal's own records: sign-in links and messages to support."""
