"""Credit: applicant data, bureau reports, scorecards, ratings and the credit model registry."""
