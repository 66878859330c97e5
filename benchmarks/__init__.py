"""Benchmarks of sparselme against statsmodels and lme4: ``python -m benchmarks``."""
