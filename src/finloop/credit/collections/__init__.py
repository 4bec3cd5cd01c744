"""Collections: a case per loan while it is past due, the tenant's strategy per bucket (automatic SMS and call
reminders through sandbox connectors, escalation to a manual queue with assignment), notes and promises to pay;
repayment reminders before and on a due date (webhook event and SMS); and the monthly credit bureau file."""
