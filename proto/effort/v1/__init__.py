"""Generated from proto/effort/v1 by `make proto`; do not edit by hand."""
