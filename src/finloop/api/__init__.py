"""HTTP entry points: translate requests into service calls inside a unit of work; nothing else."""
