"""Generated gRPC code for the public effort.v1 contract; do not edit by hand."""
