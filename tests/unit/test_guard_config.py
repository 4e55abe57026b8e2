"""The overload guard's HAProxy configuration and its static shed answer."""

import base64
from pathlib import Path

from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.guard_config import SCORE_PATH, GuardConfig, render, shed_reply


def _config(**changes: object) -> GuardConfig:
    values: dict[str, object] = dict(
        listen_host="0.0.0.0", listen_port=50051, backend_ports=(41001, 41002), max_in_flight=2,
        max_queued=6, stats_socket=Path("/run/g/stats.sock"), shed_reply=Path("/run/g/shed.http"))
    values.update(changes)
    return GuardConfig(**values)  # type: ignore[arg-type]


def _headers(reply: bytes) -> dict[str, str]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert body == b""  # no message: gRPC's Trailers-Only answer
    status_line, *lines = head.decode("ascii").split("\r\n")
    assert status_line == "HTTP/1.1 200 OK"
    return dict(line.split(": ", 1) for line in lines)


def test_the_shed_answer_is_resource_exhausted_with_error_info_and_retry_info() -> None:
    headers = _headers(shed_reply(6))
    assert headers["content-type"] == "application/grpc"
    assert headers["grpc-status"] == str(code_pb2.RESOURCE_EXHAUSTED)
    status = status_pb2.Status.FromString(base64.b64decode(headers["grpc-status-details-bin"]))
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert status.message == headers["grpc-message"]
    assert "6 Score calls waiting at the overload guard" in status.message
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert [detail.Unpack(info) or detail.Unpack(retry) for detail in status.details] == [True, True]
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "OVERLOADED", "effort.v1", {"limit": "queue"})
    assert retry.retry_delay.ToMilliseconds() == 50


def test_only_score_is_limited_and_every_server_is_behind_both_backends() -> None:
    text = render(_config())
    assert f"acl score path {SCORE_PATH}" in text
    assert "acl score_full queue(score) ge 6" in text
    assert "if score score_full" in text
    for n, port in enumerate((41001, 41002)):
        assert text.count(f"server effort{n} 127.0.0.1:{port} proto h2 maxconn 2\n") == 1
        assert text.count(f"server effort{n} 127.0.0.1:{port} proto h2\n") == 1
    assert "bind 0.0.0.0:50051 proto h2" in text


def test_tls_is_ended_at_the_guard_and_ipv6_hosts_are_bracketed() -> None:
    text = render(_config(listen_host="::", tls_pem=Path("/g/server.pem"),
                          client_ca=Path("/g/ca.pem")))
    assert ("bind [::]:50051 ssl crt /g/server.pem alpn h2 ca-file /g/ca.pem verify required "
            "proto h2") in text
