"""Effort test suite."""
