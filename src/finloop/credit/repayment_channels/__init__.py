"""Repayment channels: loans repaid through the payments domain, by the borrower (an active repayment payment)
or by an automatic debit of the borrower's mandate on the due date, retried on failure."""
