"""Effort's public API: `effort.v1` is generated from proto/effort/v1 by `make proto`."""
