"""Deterministic seed corpora and generators used by examples and benchmarks (nothing downloaded)."""
