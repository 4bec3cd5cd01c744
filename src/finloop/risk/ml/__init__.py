"""Anti-fraud models: training, registry, explanations and drift."""
