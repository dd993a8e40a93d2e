"""Benchmark grids: datasets x methods x protocols x label fractions x seeds, run as independent cells."""
