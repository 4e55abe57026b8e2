"""A small gRPC client of a running server (behind `effort score`)."""

import grpc
from google.protobuf import json_format

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc


class ClientError(RuntimeError):
    """The server answered with an error status; the message is "CODE: details"."""


def score_as_json(address: str, customer_id: str, include_features: bool, timeout: float) -> str:
    """Scores one customer through the server at `address`; the response in proto3 JSON."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        try:
            response = stub.Score(pb.ScoreRequest(customer_id=customer_id,
                                                  include_features=include_features),
                                  timeout=timeout)
        except grpc.RpcError as error:
            raise ClientError(f"{error.code().name}: {error.details()}") from None
    return json_format.MessageToJson(response, indent=2)
