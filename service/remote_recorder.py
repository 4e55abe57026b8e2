"""Records events through a running server's RecordEvents (`effort ingest --address`), with retries."""

import time
from collections.abc import Sequence

import grpc

from effort.v1 import journey_service_pb2 as journey_pb
from effort.v1 import journey_service_pb2_grpc as journey_grpc
from features.event_files import ParsedEvent
from features.events import Event
from features.recorder import RecordOutcome, Rejection

RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.2


class RemoteRecordError(RuntimeError):
    """The server refused the events, or stayed unavailable through every retry."""


class RemoteRecorder:
    """What ingest_file needs of a recorder, over gRPC: retries are safe because each event_id
    counts once."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = (),
                 timeout: float = 60.0) -> None:
        self._record = journey_grpc.JourneyServiceStub(channel).RecordEvents
        self._metadata = metadata
        self._timeout = timeout

    def record_parsed(self, parsed: Sequence[ParsedEvent]) -> RecordOutcome:
        """Sends the valid events; the invalid ones are rejected here, at their own index."""
        outcome = RecordOutcome()
        sent_at: list[int] = []
        request = journey_pb.RecordEventsRequest()
        for index, item in enumerate(parsed):
            if isinstance(item, Event):
                sent_at.append(index)
                request.events.append(item.to_proto())
            else:
                outcome.rejections.append(Rejection(index, item.field, item.reason))
        if not sent_at:
            return outcome
        response = self._send(request)
        outcome.accepted, outcome.duplicates = response.accepted, response.duplicates
        outcome.rejections += [Rejection(sent_at[r.index], r.field, r.reason)
                               for r in response.rejected_events]
        outcome.rejections.sort(key=lambda rejection: rejection.index)
        return outcome

    def mark_loaded(self) -> None:
        """Nothing to do: the load marker belongs to whoever loads the stores directly."""

    def _send(self, request: journey_pb.RecordEventsRequest) -> journey_pb.RecordEventsResponse:
        backoff = FIRST_BACKOFF_SECONDS
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._record(request, timeout=self._timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                code = error.code()
                if code not in RETRIED or attempt == ATTEMPTS:
                    raise RemoteRecordError(f"{code.name}: {error.details()}") from None
                time.sleep(backoff)
                backoff *= 2
        raise AssertionError("unreachable")
