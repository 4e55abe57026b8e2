"""The fault suite's session tally: calls by status code, degraded answers, events lost or counted twice."""

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

# Codes that no accepted call may end with, whatever the fault.
FORBIDDEN_CODES = ("UNKNOWN", "INTERNAL", "CANCELLED")
Response = TypeVar("Response", bound=Message)


def code_name(outcome: Message | BaseException) -> str:
    """The gRPC status code name of a call's outcome: OK for a response, the RpcError's code, or
    CLIENT_<ExceptionType> when the call failed before gRPC answered."""
    if isinstance(outcome, grpc.RpcError):
        return cast(grpc.Call, outcome).code().name
    if isinstance(outcome, BaseException):
        return f"CLIENT_{type(outcome).__name__}"
    return "OK"


def degraded_reasons(response: Message) -> list[str]:
    """The degraded_reason of each degraded answer in a ScoreResponse or ScoreBatchResponse, with
    numbers replaced by N so that reasons group (timeouts carry their durations)."""
    answers: Iterable[Any] = getattr(response, "responses", [response])
    return [re.sub(r"\d+(\.\d+)?", "N", answer.degraded_reason)[:120]
            for answer in answers if getattr(answer, "degraded", False)]


@dataclass
class ScenarioTally:
    """What one fault scenario saw: calls by code, degraded answers by reason, event accounting."""

    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    degraded: Counter[str] = field(default_factory=Counter)
    events_sent: int = 0
    events_counted: int = 0
    events_lost: int = 0
    events_double_counted: int = 0

    def add(self, other: "ScenarioTally") -> None:
        """Adds `other`'s figures to these."""
        self.calls += other.calls
        self.codes.update(other.codes)
        self.degraded.update(other.degraded)
        self.events_sent += other.events_sent
        self.events_counted += other.events_counted
        self.events_lost += other.events_lost
        self.events_double_counted += other.events_double_counted

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"calls": self.calls, "codes": dict(sorted(self.codes.items())),
                "degraded": dict(sorted(self.degraded.items())),
                "events": {"sent": self.events_sent, "counted": self.events_counted,
                           "lost": self.events_lost, "double_counted": self.events_double_counted}}


@dataclass(frozen=True)
class EventCount:
    """Events sent against events counted once read back: (sent, counted, lost, double counted)."""

    sent: int
    counted: int
    lost: int
    double_counted: int


def compare_counts(expected: Mapping[Any, int], read_back: Mapping[Any, int]) -> EventCount:
    """Per-key comparison (a customer, or a customer and an event type) of how many events were
    sent with how many the store counts: a key short of its events lost some, a key over them
    counted some twice; keys missing from `read_back` count 0."""
    lost = sum(max(0, n - read_back.get(key, 0)) for key, n in expected.items())
    double = sum(max(0, n - expected.get(key, 0)) for key, n in read_back.items())
    return EventCount(sum(expected.values()), sum(read_back.values()), lost, double)


class ScenarioRecorder:
    """Records the outcomes of one scenario's calls into the session tally (thread-safe)."""

    def __init__(self, name: str, tally: ScenarioTally, lock: threading.Lock) -> None:
        self.name = name
        self._tally = tally
        self._lock = lock

    def record(self, outcome: Message | BaseException) -> str:
        """Counts one call's outcome (its response, or the RpcError it raised); returns its code
        name."""
        code = code_name(outcome)
        reasons = degraded_reasons(outcome) if isinstance(outcome, Message) else []
        with self._lock:
            self._tally.calls += 1
            self._tally.codes[code] += 1
            self._tally.degraded.update(reasons)
        return code

    def call(self, method: Callable[..., Response], request: Message | bytes,
             **kwargs: Any) -> Response | grpc.RpcError:
        """Calls a stub method (or a raw channel.unary_unary), records the outcome and returns it:
        the response, or the RpcError instead of raising it."""
        try:
            response = method(request, **kwargs)
        except grpc.RpcError as error:
            self.record(error)
            return error
        self.record(response)
        return response

    def snapshot(self) -> ScenarioTally:
        """A copy of this scenario's figures so far, to assert on (every test of the scenario
        adds to them)."""
        copy = ScenarioTally()
        with self._lock:
            copy.add(self._tally)
        return copy

    def events(self, count: EventCount) -> None:
        """Adds an event accounting: sent, counted once read back, lost and counted twice."""
        with self._lock:
            self._tally.events_sent += count.sent
            self._tally.events_counted += count.counted
            self._tally.events_lost += count.lost
            self._tally.events_double_counted += count.double_counted


class FaultTally:
    """Every fault scenario's figures for the session, and the summary report built from them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scenarios: dict[str, ScenarioTally] = {}

    def scenario(self, name: str) -> ScenarioRecorder:
        """The recorder for scenario `name` (created on first use, shared by later tests)."""
        with self._lock:
            tally = self.scenarios.setdefault(name, ScenarioTally())
        return ScenarioRecorder(name, tally, self._lock)

    def total(self) -> ScenarioTally:
        """All scenarios added up."""
        total = ScenarioTally()
        with self._lock:
            for tally in self.scenarios.values():
                total.add(tally)
        return total

    def as_json(self) -> dict[str, Any]:
        """The report: per scenario and in total, with the forbidden codes spelled out."""
        total = self.total()
        return {"scenarios": {name: t.as_json() for name, t in self.scenarios.items()},
                "total": total.as_json(),
                "forbidden_codes": {code: total.codes.get(code, 0) for code in FORBIDDEN_CODES}}

    def table(self) -> list[str]:
        """The report as text lines: one row per scenario, then the total and the verdict line."""
        header = ("scenario", "calls", "OK", "other codes", "degraded", "events sent/counted",
                  "lost", "twice")
        rows = [_row(name, t) for name, t in self.scenarios.items()]
        total = self.total()
        rows.append(_row("TOTAL", total))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(str(c).ljust(w) if i in (0, 3, 4) else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        rule = "-" * len(line(header))
        forbidden = ", ".join(f"{code} {total.codes.get(code, 0)}" for code in FORBIDDEN_CODES)
        return [line(header), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1]),
                f"forbidden codes: {forbidden}; events lost {total.events_lost}, "
                f"double counted {total.events_double_counted}"]


def _row(name: str, tally: ScenarioTally) -> tuple[str, ...]:
    others = ", ".join(f"{code} {n}" for code, n in sorted(tally.codes.items()) if code != "OK")
    degraded = ", ".join(f"{reason} {n}" for reason, n in sorted(tally.degraded.items()))
    events = f"{tally.events_sent}/{tally.events_counted}" if tally.events_sent else "-"
    return (name, str(tally.calls), str(tally.codes.get("OK", 0)), others or "-",
            degraded or "-", events, str(tally.events_lost), str(tally.events_double_counted))
