"""Effort's gRPC service: scoring hot path, servicers, server, metrics and the `effort` CLI."""
