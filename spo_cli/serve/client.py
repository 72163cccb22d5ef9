"""The learner's side of the wire: one client per worker, and links that keep them busy.

    client = WorkerClient("http://10.0.0.5:8471", token)
    client.health(); client.take(32, wait_s=1.0); client.push_bytes(data, version, lineage)

    links = WorkerLinks(urls, token, lineage="run-7f3a", prefetch=64, publish_dir="run/.published")
    links.start()
    path = links.weights_path(10)            # where to write version 10's safetensors file
    links.publish(path, version=10)          # every link pushes it to its worker (latest wins)
    batch, dropped = links.get(64, timeout=600, keep=rule)   # judged rollouts, oldest first
    links.close()

Each worker has a link: a thread that pushes the newest published weights to its worker before
taking anything else from it, and otherwise keeps a small shared buffer filled with rollouts
(about one step's worth: rollouts wait in the workers' queues, not here, so they age less).

Published weights are files (the learner streams them to disk tensor by tensor): with
--weights-via path a file under the shared --weights-dir whose path is sent; over HTTP the file is
streamed as the request body, cast to the worker's dtype tensor by tensor, so neither side of the
learner holds a whole extra copy of the model in memory. Files kept: the last three on shared
storage (a worker may still be reading one); over HTTP the last two (a link may still be sending
one), removed when the links close.

Failures (Sec "Failure behaviour" of docs/async.md): a worker that refuses connections, answers
with a server error, or does not answer within `timeout` seconds (a hang) is marked down and
retried with exponential back-off (1 s, 2 s, 4 s, ... at most 30 s); when it answers again it is
given the newest weights first. Training goes on with the other workers. A worker that refuses
the token (401/403) stops training with an error: that is a configuration mistake, not an outage.
A worker that rejects the weights (400: another model) is treated like a down one and reported.
Rollouts are handed out by workers exactly once; a rollout in flight when a link or the learner
dies is not trained on, but stays in the worker's spool.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from spo_cli.console import info, warn
from spo_cli.errors import BadInput, SpoError
from spo_cli.serve.auth import bearer
from spo_cli.serve.server import H_LINEAGE, H_VERSION, MAX_TAKE, MAX_WAIT_S


class WorkerDown(Exception):
    """The worker did not answer (refused, reset, timed out) or answered with a server error."""


class WorkerRefused(Exception):
    """The worker answered 4xx: the request itself is wrong (token, payload, arguments)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"{status}: {message}")


def parse_worker_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise BadInput(f"a worker URL looks like http://HOST:PORT, got {url!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise BadInput(f"bad port in worker URL {url!r}") from None
    return parts.hostname, port


class WorkerClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        self.host, self.port = parse_worker_url(url)
        self.url = f"http://{self.host}:{self.port}" if ":" not in self.host else f"http://[{self.host}]:{self.port}"
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, ctype: str | None = None,
              headers: dict | None = None, wait: float = 0.0, length: int | None = None) -> dict:
        """One request; body: bytes, or an iterable of byte chunks with its total `length`."""
        hdrs = {**bearer(self.token), **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = ctype or "application/json"
            hdrs["Content-Length"] = str(len(body) if length is None else length)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout + wait)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise WorkerDown(f"{self.url}{path}: {type(e).__name__}: {e}") from None
        finally:
            conn.close()
        try:
            obj = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            obj = {"error": data[:200].decode("utf-8", "replace")}
        if resp.status >= 500:
            raise WorkerDown(f"{self.url}{path}: {resp.status} {obj.get('error', '')}".rstrip())
        if resp.status >= 400:
            raise WorkerRefused(resp.status, f"{self.url}{path}: {obj.get('error', '')}")
        return obj

    def health(self) -> dict:
        return self._call("GET", "/health")

    def take(self, n: int, wait_s: float = 0.0) -> tuple[list[dict], dict]:
        """-> (up to n rollouts, the worker's health after handing them out)."""
        n = max(1, min(int(n), MAX_TAKE))
        wait_s = max(0.0, min(float(wait_s), MAX_WAIT_S))
        body = orjson.dumps({"max": n, "wait_s": wait_s})
        res = self._call("POST", "/rollouts", body, wait=wait_s)
        return res.get("rollouts", []), res.get("health", {})

    def push_bytes(self, data: bytes, version: int, lineage: str) -> dict:
        return self._call("POST", "/weights", data, "application/octet-stream",
                          {H_VERSION: str(version), H_LINEAGE: lineage}, wait=len(data) / 50e6)

    def push_file(self, path: str | Path, version: int, lineage: str, dtype: Any = None) -> dict:
        """Send a safetensors file as the request body, read (and cast to dtype) tensor by tensor."""
        from spo_cli.serve.weights import stream_file

        length, chunks = stream_file(path, dtype)
        return self._call("POST", "/weights", chunks, "application/octet-stream",
                          {H_VERSION: str(version), H_LINEAGE: lineage}, wait=length / 50e6, length=length)

    def push_path(self, path: str, version: int, lineage: str) -> dict:
        body = orjson.dumps({"path": str(path), "version": version, "lineage": lineage})
        return self._call("POST", "/weights", body, wait=60.0)


@dataclass
class _Link:
    client: WorkerClient
    up: bool | None = None  # None: not heard from yet
    failures: int = 0
    next_try: float = 0.0
    acked: int | None = None  # version of ours it holds
    last_contact: float = 0.0
    dtype: str = "float32"
    health: dict | None = None
    error: str | None = None
    taken: int = 0
    thread: threading.Thread | None = None


class WorkerLinks:
    def __init__(self, urls: list[str], token: str | None, *, lineage: str, prefetch: int,
                 timeout: float = 60.0, take_wait: float = 1.0, backoff: tuple[float, float] = (1.0, 30.0),
                 weights_via: str = "http", weights_dir: str | None = None, tokenizer: str | None = None,
                 heartbeat: float = 5.0, publish_dir: str | None = None):
        if not urls:
            raise BadInput("--async needs at least one worker (--workers URL[,URL...])")
        if weights_via not in ("http", "path"):
            raise BadInput(f"--weights-via must be http or path, got {weights_via!r}")
        if weights_via == "path" and not weights_dir:
            raise BadInput("--weights-via path needs --weights-dir (shared storage the workers can read)")
        self.links = [_Link(WorkerClient(u, token, timeout)) for u in urls]
        if len({(l.client.host, l.client.port) for l in self.links}) != len(self.links):
            raise BadInput("a worker is listed twice in --workers")
        self.lineage = lineage
        self.prefetch = max(1, prefetch)
        self.take_wait = take_wait
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.weights_via = weights_via
        self.weights_dir = Path(weights_dir) if weights_dir else None
        # where published files are written: the shared directory (path), else a local one (http)
        self._tmp = None
        if weights_via == "path":
            self.publish_dir = self.weights_dir
        elif publish_dir:
            self.publish_dir = Path(publish_dir)
        else:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="spo-published-")
            self.publish_dir = Path(self._tmp.name)
        self.tokenizer = tokenizer
        self.cond = threading.Condition()
        self.buffer: list[dict] = []
        self.fatal: str | None = None
        self._closed = False
        self._latest: tuple[int, Path] | None = None  # (version, its safetensors file)
        self.pushes = 0

    # ------------------------------------------------------------------ control
    def start(self) -> WorkerLinks:
        for link in self.links:
            link.thread = threading.Thread(target=self._run, args=(link,), daemon=True,
                                           name=f"spo-link-{link.client.port}")
            link.thread.start()
        return self

    def close(self) -> None:
        with self.cond:
            self._closed = True
            self.cond.notify_all()
        for link in self.links:
            if link.thread is not None:
                link.thread.join(5.0)
        if self._tmp is not None:
            self._tmp.cleanup()
        elif self.weights_via == "http":
            self._prune(0)  # only this learner reads them

    def _prune(self, keep: int) -> None:
        olds = sorted(self.publish_dir.glob(f"{self.lineage}-v*.safetensors"))
        for old in olds[:len(olds) - keep]:
            old.unlink(missing_ok=True)

    def weights_path(self, version: int) -> Path:
        """Where the learner writes the file of a version's weights (then passes it to publish)."""
        self.publish_dir.mkdir(parents=True, exist_ok=True)
        return self.publish_dir / f"{self.lineage}-v{int(version):08d}.safetensors"

    def publish(self, path: str | Path, version: int) -> None:
        """Make the safetensors file at `path` (weights_path(version), complete; not changed
        afterwards) the weights every worker gets. Older files of this lineage are removed but the
        last few (workers or links may still be reading them)."""
        with self.cond:
            self._latest = (int(version), Path(path))
            self.cond.notify_all()
        self._prune(3 if self.weights_via == "path" else 2)

    @property
    def all_down(self) -> bool:
        return all(l.up is False for l in self.links)

    def stats(self) -> dict:
        return {"workers_up": sum(1 for l in self.links if l.up), "workers": len(self.links),
                "weights_pushes": self.pushes,
                "workers_acked_version": min((l.acked for l in self.links if l.up and l.acked is not None),
                                             default=None)}

    def get(self, n: int, timeout: float, keep: Callable[[dict], str | None] | None = None) -> tuple[list[dict], dict]:
        """Up to n rollouts (oldest first) that `keep` accepts (it returns None, or the reason to
        drop one). Waits up to `timeout` seconds; returns early when every worker is down.
        -> (rollouts, {reason: count of dropped})."""
        out: list[dict] = []
        dropped: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.fatal is not None:
                    raise SpoError(self.fatal)
                while self.buffer and len(out) < n:
                    rec = self.buffer.pop(0)
                    why = keep(rec) if keep is not None else None
                    if why is None:
                        out.append(rec)
                    else:
                        dropped[why] = dropped.get(why, 0) + 1
                self.cond.notify_all()  # room in the buffer
                left = deadline - time.monotonic()
                if len(out) >= n or left <= 0 or self.all_down:
                    return out, dropped
                self.cond.wait(min(left, 0.5))

    # ------------------------------------------------------------------ one link
    def _heard(self, link: _Link, h: dict) -> None:
        link.health, link.dtype = h, str(h.get("dtype") or link.dtype)
        if (h.get("accepted_lineage"), h.get("accepted_version")) != (self.lineage, link.acked):
            link.acked = None  # it restarted (or never had ours): push the weights again

    def _down(self, link: _Link, why: str) -> None:
        link.failures += 1
        delay = min(self.backoff[0] * 2 ** (link.failures - 1), self.backoff[1])
        link.next_try = time.monotonic() + delay
        if link.up is not False:
            warn(f"worker {link.client.url} is down ({why}); retrying with back-off")
        link.up, link.error, link.acked = False, why, None
        with self.cond:
            self.cond.notify_all()

    def _run(self, link: _Link) -> None:
        c = link.client
        while True:
            with self.cond:
                if self._closed:
                    return
                wait = link.next_try - time.monotonic()
                if wait > 0:
                    self.cond.wait(min(wait, 0.5))
                    continue
                latest = self._latest
                room = self.prefetch - len(self.buffer)
                idle = (latest is None or link.acked == latest[0]) and room <= 0 and bool(link.up)
                if idle and time.monotonic() - link.last_contact < self.heartbeat:
                    self.cond.wait(0.5)
                    continue
            try:
                if not link.up or idle:  # (re)connecting, or a heartbeat while there is nothing to do
                    h = c.health()
                    link.last_contact = time.monotonic()
                    self._heard(link, h)
                    if not link.up:
                        if link.up is False:
                            info(f"worker {c.url} is back")
                        if self.tokenizer and h.get("tokenizer") not in (None, self.tokenizer):
                            warn(f"worker {c.url} uses another tokenizer ({h.get('tokenizer')}); its rollouts "
                                 "are re-tokenised and their log-probs dropped")
                        link.up, link.failures, link.error = True, 0, None
                    if idle:
                        continue
                if latest is not None and link.acked != latest[0]:
                    version, path = latest
                    if self.weights_via == "path":
                        c.push_path(str(path), version, self.lineage)
                    else:
                        import torch

                        c.push_file(path, version, self.lineage, getattr(torch, link.dtype, None))
                    link.acked = version
                    self.pushes += 1
                    continue
                if room > 0:
                    got, h = c.take(min(room, MAX_TAKE), self.take_wait)
                    link.last_contact = time.monotonic()
                    link.taken += len(got)
                    self._heard(link, h)
                    with self.cond:
                        self.buffer.extend(got)
                        self.cond.notify_all()
            except WorkerDown as e:
                self._down(link, str(e))
            except WorkerRefused as e:
                if e.status in (401, 403):
                    with self.cond:
                        self.fatal = f"worker {c.url} refused this learner: {e} (check --token / $SPO_TOKEN)"
                        self.cond.notify_all()
                    return
                self._down(link, f"refused: {e}")
            except Exception as e:  # noqa: BLE001 - e.g. a weights file that cannot be written
                self._down(link, f"{type(e).__name__}: {e}")
