"""A bounded HTTP load loop for rollout tests and benchmarks (loopback targets only).

Each worker thread sends requests back to back until `stop` is set or `max_seconds` pass,
recording status and latency. A request that raises or answers 5xx counts as a failure; one
that raises (no answer at all) is also an error. With `classify`, each answer's class is
recorded with the time its request was sent.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class _ServerName(HTTPAdapter):
    """Reaches the URL's address but speaks TLS (SNI, the certificate's name) and HTTP (Host)
    for `server_name`."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        name = self.server_name
        super().init_poolmanager(*args, server_hostname=name, assert_hostname=name, **kwargs)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        port = urllib.parse.urlsplit(request.url).port
        request.headers["Host"] = f"{self.server_name}:{port}" if port else self.server_name


def https_session(server_name: str | None = None) -> requests.Session:
    """A session; with `server_name`, for a site whose name no resolver here knows (an ACME
    stack's domain), reached at the URL's address. Pass `verify` with each request: the
    environment's REQUESTS_CA_BUNDLE would override a session's own."""
    session = requests.Session()
    if server_name:
        session.mount("https://", _ServerName(server_name))
    return session


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)  # time.time() of each failure, in order
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: dict[str, int] = field(default_factory=dict)
    # time.monotonic() of the first and the last answer with each body (with track_body)
    first_seen: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    # (time.monotonic() the request was sent, the answer's class), with `classify`
    answers: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, kind: str) -> None:
        """A failed request of `kind` (HTTP 5xx or the exception's name), timed now."""
        self.failures.append(kind)
        self.failed_at.append(time.time())

    @property
    def errors(self) -> list[str]:
        """The requests that got no answer (connection refused or reset, timeout), by kind."""
        return [failure for failure in self.failures if not failure.startswith("HTTP ")]

    def classes(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        """How many answers of each class the requests sent between `since` and `until` got."""
        return dict(collections.Counter(c for at, c in self.answers if since <= at < until))

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.failures)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def summary(self) -> str:
        rps = self.requests / self.seconds if self.seconds else 0.0
        mean = statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")
        return (
            f"requests={self.requests} failures={len(self.failures)} rps={rps:.1f} "
            f"p50={self.percentile(50):.1f}ms p99={self.percentile(99):.1f}ms "
            f"mean={mean:.1f}ms"
        )


class LoadLoop:
    """Runs `workers` threads against `url` in the background; start(), then stop().
    `server_name`: see https_session; `new_connections`: every request on a connection of its
    own (a full TLS handshake each), not kept alive."""

    def __init__(
        self,
        url: str,
        workers: int = 4,
        max_seconds: float = 300,
        timeout: float = 10,
        verify: bool | str = False,
        track_body: bool = False,
        classify: Callable[[requests.Response], str] | None = None,
        server_name: str | None = None,
        new_connections: bool = False,
    ) -> None:
        self.url, self.workers, self.max_seconds = url, workers, max_seconds
        self.timeout, self.verify, self.track_body = timeout, verify, track_body
        self.classify = classify
        self.server_name, self.new_connections = server_name, new_connections
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.result = LoadResult()

    def _work(self) -> None:
        session = https_session(self.server_name)
        if self.new_connections:
            session.headers["Connection"] = "close"
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            began = time.perf_counter()
            try:
                response = session.get(self.url, timeout=self.timeout, verify=self.verify)
                elapsed = (time.perf_counter() - began) * 1000
                answer = self.classify(response) if self.classify else None
                with self._lock:
                    if answer is not None:
                        self.result.answers.append((sent, answer))
                    self.result.statuses[response.status_code] = (
                        self.result.statuses.get(response.status_code, 0) + 1
                    )
                    if response.status_code >= 500:
                        self.result.fail(f"HTTP {response.status_code}")
                    else:
                        self.result.latencies_ms.append(elapsed)
                        if self.track_body:
                            body = response.text.strip()
                            self.result.bodies[body] = self.result.bodies.get(body, 0) + 1
                            self.result.first_seen.setdefault(body, time.monotonic())
                            self.result.last_seen[body] = time.monotonic()
            except requests.RequestException as exc:
                with self._lock:
                    self.result.fail(type(exc).__name__)

    def start(self) -> LoadLoop:
        self._began = time.monotonic()
        for _ in range(self.workers):
            thread = threading.Thread(target=self._work, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.result.seconds = time.monotonic() - self._began
        return self.result
