"""Generated from proto/effort/v1 by `make proto`."""
