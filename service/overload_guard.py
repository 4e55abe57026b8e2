"""Runs the overload guard (HAProxy, configured by service/guard_config.py) in front of the gRPC
servers: started after them, watched, re-read on a TLS rotation, stopped after them."""

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from service.guard_config import GuardConfig, render, shed_reply
from service.guard_metrics import GuardCollector
from service.polling import Poller
from service.settings import Settings
from service.tls import TlsFiles, files_stamp, read_checked, tls_files

log = logging.getLogger(__name__)

HAPROXY = "haproxy"
DEBIAN_HAPROXY = Path("/usr/sbin/haproxy")  # off the PATH of users other than root
START_SECONDS = 10.0  # for HAProxy to listen
STOP_SECONDS = 10.0
TLS_POLL_SECONDS = 5.0


class GuardError(RuntimeError):
    """The guard cannot start; the message is one readable line."""


def haproxy_binary() -> str | None:
    """HAProxy's executable: on the PATH, else Debian's; None when it is not installed."""
    found = shutil.which(HAPROXY)
    if found is None and os.access(DEBIAN_HAPROXY, os.X_OK):
        found = str(DEBIAN_HAPROXY)
    return found


def free_loopback_port() -> int:
    """A port nothing listens on at 127.0.0.1 now (for a server behind the guard)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alerts(text: str) -> str:
    """HAProxy's ALERT lines, joined, or the last line of its output."""
    lines = [line.split(":", 2)[-1].strip() for line in text.splitlines() if "ALERT" in line]
    return "; ".join(lines) or (text.strip().splitlines() or ["no output"])[-1]


class OverloadGuard:
    """One HAProxy master process (master-worker mode: SIGUSR2 re-reads the files)."""

    def __init__(self, settings: Settings, backend_ports: list[int],
                 on_exit: threading.Event | None = None) -> None:
        """Checks and writes the configuration; `start` runs it. `on_exit` is set when HAProxy
        ends by itself, so that the server stops too rather than serve an unreachable port."""
        binary = haproxy_binary()
        if binary is None:
            raise GuardError("EFFORT_OVERLOAD_GUARD=true needs haproxy on the PATH (Debian's "
                             "haproxy package; `make haproxy` installs it)")
        self._binary = binary
        self._on_exit = on_exit
        self._scratch = Path(tempfile.mkdtemp(prefix="effort-guard-"))
        self._tls = tls_files(settings)
        self._tls_stamp = files_stamp(self._tls) if self._tls else None
        max_queued = settings.guard_max_queued * len(backend_ports)
        self.config = GuardConfig(
            settings.grpc_host, settings.grpc_port, tuple(backend_ports),
            settings.guard_max_in_flight, max_queued,
            self._scratch / "stats.sock", self._scratch / "shed.http",
            self._scratch / "server.pem" if self._tls else None,
            self._scratch / "client-ca.pem" if self._tls and self._tls.client_ca else None)
        self._config_file = self._scratch / "haproxy.cfg"
        try:
            self.config.shed_reply.write_bytes(shed_reply(max_queued))
            if self._tls is not None:
                self._write_tls(self._tls)
            self._config_file.write_text(render(self.config))
            self._check_config()
        except BaseException:
            shutil.rmtree(self._scratch, ignore_errors=True)
            raise
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._tls_poller = Poller(self._check_tls, TLS_POLL_SECONDS, "guard-tls")

    def _write_tls(self, files: TlsFiles) -> None:
        """The checked files in HAProxy's form: chain and key in one file, readable by us only."""
        checked = read_checked(files)
        assert self.config.tls_pem is not None
        _write_private(self.config.tls_pem, checked.cert.rstrip(b"\n") + b"\n" + checked.key)
        if self.config.client_ca is not None and checked.client_ca is not None:
            _write_private(self.config.client_ca, checked.client_ca)

    def _check_config(self) -> None:
        checked = subprocess.run([self._binary, "-c", "-q", "-f", str(self._config_file)],
                                 capture_output=True, text=True)
        if checked.returncode != 0:
            raise GuardError(f"the overload guard's HAProxy configuration was refused: "
                             f"{_alerts(checked.stderr + checked.stdout)}")

    def start(self, registry: CollectorRegistry) -> None:
        """Starts HAProxy, waits until it listens (GuardError when it does not) and puts its
        counters on `registry`, the metrics page's."""
        errors = (self._scratch / "haproxy.log").open("wb")
        self._process = subprocess.Popen(
            [self._binary, "-W", "-db", "-f", str(self._config_file)],
            stdin=subprocess.DEVNULL, stdout=errors, stderr=errors)
        errors.close()
        deadline = time.monotonic() + START_SECONDS
        host = self.config.listen_host.strip("[]") or "127.0.0.1"
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise GuardError(f"the overload guard (HAProxy) exited at start: "
                                 f"{_alerts(self.output())}")
            try:
                socket.create_connection((connect_host, self.config.listen_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise GuardError(f"the overload guard (HAProxy) did not listen on port "
                             f"{self.config.listen_port} within {START_SECONDS:.0f} s")
        registry.register(GuardCollector(self.config.stats_socket))
        threading.Thread(target=self._watch, name="guard-watch", daemon=True).start()
        self._tls_poller.start()
        log.info("overload guard (HAProxy pid %d) on %s:%d: %d Score calls at a time per "
                 "server, beyond %d waiting shed with RESOURCE_EXHAUSTED", self._process.pid,
                 self.config.listen_host, self.config.listen_port, self.config.max_in_flight,
                 self.config.max_queued)

    def output(self) -> str:
        """What HAProxy wrote to stderr so far."""
        return (self._scratch / "haproxy.log").read_text(errors="replace")

    @property
    def pid(self) -> int | None:
        """HAProxy's master process id while it runs."""
        return None if self._process is None else self._process.pid

    def _watch(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if not self._stopping:
            log.error("the overload guard (HAProxy) exited with code %d; stopping the server: "
                      "%s", code, _alerts(self.output()))
            if self._on_exit is not None:
                self._on_exit.set()

    def _check_tls(self) -> None:
        """Re-reads HAProxy's configuration when the TLS files changed and are usable."""
        if self._tls is None or self._process is None:
            return
        stamp = files_stamp(self._tls)
        if stamp == self._tls_stamp:
            return
        self._tls_stamp = stamp  # one line per change
        try:
            self._write_tls(self._tls)
        except ValueError as error:
            log.warning("TLS files changed but cannot be used yet; the overload guard keeps the "
                        "previous certificate: %s", error)
            return
        self._process.send_signal(signal.SIGUSR2)  # master-worker: reload, connections kept
        log.info("overload guard: TLS certificate reloaded from %s", self._tls.cert)

    def stop(self) -> None:
        """Stops HAProxy (call after the servers behind it stopped) and removes its files."""
        self._stopping = True
        self._tls_poller.stop()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    """Writes `data` readable by this user only, replacing `path` whole."""
    partial = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    partial.replace(path)
