"""Loan outcomes: how each loan turned out (on time, late, default, recovered), the data set they make for
retraining, and the comparison of a retrained model with the champion before the registry promotes it."""
