"""`effort score CUSTOMER_ID`: score one customer through a running server."""

import argparse

from service.client import Connection, score_as_json


def run(args: argparse.Namespace) -> None:
    """Prints the response as proto3 JSON."""
    connection = Connection.from_args(args.address, args.ca, args.cert, args.key, args.token)
    print(score_as_json(connection, args.customer_id, args.features, args.timeout))
