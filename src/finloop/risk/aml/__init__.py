"""Anti-money-laundering: transaction monitoring scenarios and sanctions screening."""
