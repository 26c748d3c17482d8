"""Benchmark scripts (run as files: python benchmarks/NAME.py --help); a package so that their row functions pickle into child processes."""
