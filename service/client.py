"""The client side of `effort score` and `effort ingest --address`: channel, token and errors."""

import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import json_format

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc
from service.channels import bearer_metadata, open_channel


class ClientError(RuntimeError):
    """The server answered with an error status; the message is "CODE: details"."""


@dataclass(frozen=True)
class Connection:
    """Where a server is and how to reach it: its CA, a client certificate, a bearer token."""

    address: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None

    @classmethod
    def from_args(cls, address: str, ca: Path | None, cert: Path | None, key: Path | None,
                  token: str | None) -> "Connection":
        """From command-line options; the token falls back on EFFORT_TOKEN."""
        return cls(address, ca, cert, key, token or os.environ.get("EFFORT_TOKEN") or None)

    def channel(self) -> grpc.Channel:
        """A new channel: TLS when a CA or client certificate is given, plaintext otherwise."""
        return open_channel(self.address, self.ca, self.cert, self.key)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token, if any."""
        return bearer_metadata(self.token)


def score_as_json(connection: Connection, customer_id: str, include_features: bool,
                  timeout: float) -> str:
    """Scores one customer through the server; the response in proto3 JSON."""
    with connection.channel() as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        try:
            response = stub.Score(pb.ScoreRequest(customer_id=customer_id,
                                                  include_features=include_features),
                                  timeout=timeout, metadata=connection.metadata)
        except grpc.RpcError as error:
            raise ClientError(f"{error.code().name}: {error.details()}") from None
    return json_format.MessageToJson(response, indent=2)
