"""Benchmarks (never part of the test suite's pass/fail). `make bench` runs them all."""
