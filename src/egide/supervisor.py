"""Several server processes, each with its own listening socket on the same port.

With one shared socket, whichever process is awake accepts: under load one worker took all 16
connections of a benchmark while the other idled. With SO_REUSEPORT every worker listens on its
own socket and the kernel spreads new connections across them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

log = logging.getLogger("egide.supervisor")

WorkerMain = Callable[[str, Event], None]


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other workers can bind to as well."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Fail at once, with the address in the message, if something else holds the port."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc


class Supervisor:
    """Starts `count` workers, restarts one that dies, stops them all on SIGTERM or SIGINT."""

    def __init__(self, target: WorkerMain, payload: str, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._target = target
        self._payload = payload
        self._count = count
        self._stopping = threading.Event()
        self._workers: list[Any] = []

    def _start(self) -> tuple[Any, Event]:
        ready = self._context.Event()
        process = self._context.Process(
            target=self._target, args=(self._payload, ready), name="egide-worker"
        )
        process.start()
        return process, ready

    def run(self, on_ready: Callable[[], None]) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        started = [self._start() for _ in range(self._count)]
        self._workers = [process for process, _ in started]
        for process, ready in started:
            while not ready.wait(0.1) and not self._stopping.is_set():
                if not process.is_alive():
                    self._stopping.set()
                    self._stop_all()
                    raise RuntimeError("a server process failed to start; see the log above")
        if not self._stopping.is_set():
            on_ready()
        while not self._stopping.wait(0.5):
            for i, process in enumerate(self._workers):
                if not process.is_alive() and not self._stopping.is_set():
                    log.error("server process %s exited (%s); starting another", process.pid,
                              process.exitcode)  # fmt: skip
                    self._workers[i], _ = self._start()
        self._stop_all()

    def _stop_all(self) -> None:
        """Graceful: each worker finishes its requests in flight, then exits."""
        for process in self._workers:
            if process.is_alive():
                process.terminate()
        for process in self._workers:
            process.join(60)
            if process.is_alive():
                process.kill()
                process.join()
