"""The overload guard's counters on Effort's metrics page, read from HAProxy's stats socket at
each scrape."""

import csv
import io
import socket
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.guard_config import SCORE_BACKEND

STATS_TIMEOUT_SECONDS = 1.0


def read_stats(stats_socket: Path) -> list[dict[str, str]]:
    """HAProxy's `show stat` rows (one per frontend, backend and server); OSError when it does
    not answer."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(STATS_TIMEOUT_SECONDS)
        connection.connect(str(stats_socket))
        connection.sendall(b"show stat\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode("ascii", errors="replace").lstrip("# ")
    return list(csv.DictReader(io.StringIO(text)))


class GuardCollector(Collector):
    """effort_guard_shed_total, effort_guard_score_in_flight and effort_guard_score_queued."""

    def __init__(self, stats_socket: Path) -> None:
        self._stats_socket = stats_socket

    def collect(self) -> Iterator[Metric]:
        try:
            rows = read_stats(self._stats_socket)
        except OSError:
            return  # HAProxy is gone or busy; its exit stops the server (service/overload_guard.py)
        shed = CounterMetricFamily("effort_guard_shed", "Score calls the overload guard answered "
                                   "RESOURCE_EXHAUSTED itself, its in-flight limit reached")
        in_flight = GaugeMetricFamily("effort_guard_score_in_flight", "Score calls the overload "
                                      "guard has passed to the servers and not yet seen answered")
        queued = GaugeMetricFamily("effort_guard_score_queued", "Score calls waiting in the "
                                   "overload guard for a server")
        for row in rows:
            if row.get("svname") == "FRONTEND":
                shed.add_metric([], float(row.get("intercepted") or 0))
            elif row.get("pxname") == SCORE_BACKEND and row.get("svname") == "BACKEND":
                in_flight.add_metric([], float(row.get("scur") or 0))
                queued.add_metric([], float(row.get("qcur") or 0))
        yield shed
        yield in_flight
        yield queued
