"""A client that knows only what server reflection tells it scores the demo customers."""

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from service.server import RunningServer


def test_reflection_only_client_scores_customers(server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "effort.v1.ScoringService" in database.get_services()
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("effort.v1.ScoringService").FindMethodByName("Score")
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        score = channel.unary_unary("/effort.v1.ScoringService/Score",
                                    request_serializer=request_class.SerializeToString,
                                    response_deserializer=response_class.FromString)
        answers = [json_format.MessageToDict(score(json_format.ParseDict(
            {"customer_id": f"C{n:06d}"}, request_class()), timeout=10))
            for n in range(1, 201)]
    assert {a["tier"] for a in answers} == {"TIER_STANDARD", "TIER_SENIOR"}
    assert all(0 <= a.get("effortScore", 0) <= 100 and 0 <= a.get("churnRisk", 0) <= 1
               for a in answers)
    assert all(a.get("reasons") for a in answers if a["tier"] == "TIER_SENIOR")
