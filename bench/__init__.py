"""Benchmarks (`make bench`): each figure beside a baseline measured in the same run, as a ratio."""
