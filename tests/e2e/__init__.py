"""End-to-end tier: real gRPC servers and `effort` commands in their own processes."""
