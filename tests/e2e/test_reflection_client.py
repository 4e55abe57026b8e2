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


def test_reflection_only_client_records_events_and_sees_hand_counts(server: RunningServer) -> None:
    import random
    import uuid
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    customer = f"NEW{uuid.uuid4().hex[:8]}"

    def event(n: int, hours_ago: float, kind: str, channel: str) -> dict[str, str]:
        return {"eventId": f"{customer}-{n}", "customerId": customer, "type": kind,
                "channel": channel,
                "occurredAt": (now - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")}

    events = [
        event(1, 2, "EVENT_TYPE_CONTACT", "CHANNEL_VOICE"),
        event(2, 2, "EVENT_TYPE_TRANSFER", "CHANNEL_VOICE"),       # same second as the contact
        event(3, 30, "EVENT_TYPE_CONTACT", "CHANNEL_CHAT"),
        event(4, 29, "EVENT_TYPE_TRANSFER", "CHANNEL_CHAT"),
        event(5, 100, "EVENT_TYPE_CONTACT", "CHANNEL_VOICE"),
        event(6, 24 * 8, "EVENT_TYPE_CONTACT", "CHANNEL_EMAIL"),   # older than 7 days
        event(7, 24 * 9, "EVENT_TYPE_TRANSFER", "CHANNEL_EMAIL"),  # older than 7 days
    ]
    stream = events + events[:3]  # resent duplicates
    random.Random(7).shuffle(stream)
    # Hand count: contacts_7d = 3 (events 1, 3, 5), contacts_30d = 4, distinct_channels_7d = 2
    # (voice, chat), transfers_7d = 2 (events 2, 4).
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        record = pool.FindServiceByName("effort.v1.JourneyService").FindMethodByName(
            "RecordEvents")
        score = pool.FindServiceByName("effort.v1.ScoringService").FindMethodByName("Score")
        calls = {}
        for method in (record, score):
            request_class = GetMessageClass(method.input_type)
            calls[method.name] = (request_class, channel.unary_unary(
                f"/{method.containing_service.full_name}/{method.name}",
                request_serializer=request_class.SerializeToString,
                response_deserializer=GetMessageClass(method.output_type).FromString))
        accounting = json_format.MessageToDict(calls["RecordEvents"][1](json_format.ParseDict(
            {"events": stream[:6]}, calls["RecordEvents"][0]()), timeout=10))
        more = json_format.MessageToDict(calls["RecordEvents"][1](json_format.ParseDict(
            {"events": stream[6:]}, calls["RecordEvents"][0]()), timeout=10))
        scored = json_format.MessageToDict(calls["Score"][1](json_format.ParseDict(
            {"customerId": customer, "includeFeatures": True}, calls["Score"][0]()), timeout=10))
    assert accounting.get("accepted", 0) + more.get("accepted", 0) == 7
    assert accounting.get("duplicates", 0) + more.get("duplicates", 0) == 3
    features = scored["features"]
    assert (features["contacts_7d"], features["contacts_30d"]) == (3, 4)
    assert (features["distinct_channels_7d"], features["transfers_7d"]) == (2, 2)
