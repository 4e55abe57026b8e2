"""`effort score CUSTOMER_ID`: score one customer through a running server."""

import argparse

from service.client import score_as_json


def run(args: argparse.Namespace) -> None:
    """Prints the response as proto3 JSON."""
    print(score_as_json(args.address, args.customer_id, args.features, args.timeout))
