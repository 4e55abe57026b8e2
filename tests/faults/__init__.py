"""Fault-injection suite: real `effort serve` processes under faults, every call tallied for the report."""
