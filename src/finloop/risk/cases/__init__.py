"""Risk control: cases and the review queue."""
