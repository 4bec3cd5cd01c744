"""The synthetic world behind `finloop demo` and the benchmarks."""
