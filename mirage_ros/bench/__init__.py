"""Benchmarks: scripts printing JSON with ratios against a baseline measured in the same run."""
