"""`spo sample --serve`: a RolloutWorker behind a small HTTP server (stdlib ThreadingHTTPServer).

Wire protocol (version 1; JSON bodies unless noted; every response carries X-Spo-Protocol):

    GET  /health    -> worker.health(): policy_version, lineage, queue depth, rollouts/s, counters
    POST /rollouts  {"max": N, "wait_s": S} -> {"rollouts": [trajectory, ...], "health": {...}}
                    up to N judged trajectories, oldest first, each served once; waits up to S
                    seconds (<= 30) for the first.
    POST /weights   body: safetensors bytes (Content-Type application/octet-stream), with headers
                    X-Spo-Policy-Version: V and X-Spo-Lineage: L
                    or JSON {"path": P, "version": V, "lineage": L}: a safetensors file under the
                    worker's --weights-dir (shared storage)
                    -> {"accepted": V, "lineage": L, "dropped": n}; 400 {"error": ...} if the
                    payload is not valid safetensors or does not fit the model (the worker keeps
                    its weights); new weights are loaded before the next sampling round.

Every request must carry `Authorization: Bearer <token>` when the worker has a token (always
off loopback; see auth.py), checked before anything else, including before a body is read.
Bodies are bounded: Content-Length is required; JSON bodies may be 64 KiB, weights the size of the
model in fp32 plus 16 MiB, and anything longer is refused (413) unread.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from spo_cli.serve.auth import authorized, check_bind, resolve_token
from spo_cli.serve.weights import WeightsError, decode, read_file
from spo_cli.serve.worker import PROTOCOL, RolloutWorker

MAX_JSON_BODY = 64 << 10
MAX_TAKE = 4096
MAX_WAIT_S = 30.0
LINEAGE_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
H_VERSION, H_LINEAGE, H_PROTOCOL = "X-Spo-Policy-Version", "X-Spo-Lineage", "X-Spo-Protocol"


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class WorkerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, worker: RolloutWorker, *, token: str | None,
                 weights_dir: str | None = None, verbose: bool = False):
        check_bind(host, token)  # before the socket exists
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        self.worker = worker
        self.token = token
        self.weights_dir = Path(weights_dir).resolve() if weights_dir else None
        self.verbose = verbose
        super().__init__((host.strip("[]"), port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: WorkerServer
    server_version = "spo-worker/1"
    timeout = 120  # seconds per socket operation: a stalled client does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            sys.stderr.write(f"spo worker: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: dict) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(H_PROTOCOL, str(PROTOCOL))
        self.end_headers()
        self.wfile.write(data)

    def _body(self, limit: int) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise _Refused(411, "Content-Length required")
        try:
            n = int(raw)
        except ValueError:
            raise _Refused(400, "bad Content-Length") from None
        if n < 0:
            raise _Refused(400, "bad Content-Length")
        if n > limit:
            self.close_connection = True  # the body stays unread
            raise _Refused(413, f"body of {n} bytes is over the limit of {limit}")
        buf = bytearray()
        while len(buf) < n:
            chunk = self.rfile.read(min(n - len(buf), 1 << 20))
            if not chunk:
                raise _Refused(400, f"body ended after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def _json(self) -> dict:
        try:
            obj = orjson.loads(self._body(MAX_JSON_BODY) or b"{}")
        except orjson.JSONDecodeError as e:
            raise _Refused(400, f"bad JSON: {e}") from None
        if not isinstance(obj, dict):
            raise _Refused(400, "the body must be a JSON object")
        return obj

    def _dispatch(self, method: str) -> None:
        try:
            if not authorized(self.headers.get("Authorization"), self.server.token):
                self.close_connection = True
                raise _Refused(401, "missing or wrong token")
            route = (method, urlsplit(self.path).path.rstrip("/") or "/")
            handler = {("GET", "/health"): self._health, ("POST", "/rollouts"): self._rollouts,
                       ("POST", "/weights"): self._weights}.get(route)
            if handler is None:
                known = {"/health", "/rollouts", "/weights"}
                raise _Refused(405 if route[1] in known else 404, f"no {method} {route[1]}")
            handler()
        except _Refused as e:
            self._send(e.status, {"error": e.message})
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------ endpoints
    def _health(self) -> None:
        h = self.server.worker.health()
        self._send(200 if h["fatal"] is None else 503, h)

    def _rollouts(self) -> None:
        req = self._json()
        try:
            n = int(req.get("max", 1))
            wait = float(req.get("wait_s", 0.0))
        except (TypeError, ValueError):
            raise _Refused(400, "max must be an integer and wait_s a number") from None
        if not 1 <= n <= MAX_TAKE or not 0.0 <= wait <= MAX_WAIT_S:
            raise _Refused(400, f"need 1 <= max <= {MAX_TAKE} and 0 <= wait_s <= {MAX_WAIT_S}")
        w = self.server.worker
        if w.fatal is not None:
            raise _Refused(503, f"the worker stopped: {w.fatal}")
        out = w.take(n, wait)
        self._send(200, {"rollouts": out, "health": w.health()})

    def _weights(self) -> None:
        w = self.server.worker
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            req = self._json()
            version, lineage, path = req.get("version"), req.get("lineage"), req.get("path")
            if not isinstance(path, str):
                raise _Refused(400, "weights by path need a string 'path'")
            tensors = self._by_path(path)
        elif ctype == "application/octet-stream":
            version, lineage = self.headers.get(H_VERSION), self.headers.get(H_LINEAGE)
            data = self._body(w.max_weights_bytes)
            try:
                tensors = decode(data)
            except WeightsError as e:
                raise _Refused(400, str(e)) from None
        else:
            raise _Refused(415, "send safetensors bytes (application/octet-stream) or a JSON path")
        try:
            version = int(version)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _Refused(400, f"bad or missing policy version {version!r}") from None
        if version < 0 or not isinstance(lineage, str) or not LINEAGE_RE.match(lineage):
            raise _Refused(400, "need a policy version >= 0 and a lineage of [A-Za-z0-9._:-]{1,128}")
        try:
            res = w.offer_weights(tensors, version, lineage)
        except WeightsError as e:
            raise _Refused(400, str(e)) from None
        self._send(200, res)

    def _by_path(self, path: str) -> dict:
        root = self.server.weights_dir
        if root is None:
            raise _Refused(403, "this worker takes weights by path only with --weights-dir")
        p = Path(path)
        p = (root / p if not p.is_absolute() else p).resolve()
        if not p.is_relative_to(root):
            raise _Refused(403, f"the weights path is outside --weights-dir {root}")
        try:
            return read_file(p)
        except WeightsError as e:
            raise _Refused(400, str(e)) from None


def run_worker(make_sampler: Callable[[], Any], problems_spec: Any, *, host: str = "127.0.0.1",
               port: int = 0, token: str | None = None, weights_dir: str | None = None, skip_invalid: bool = False,
               verbose: bool = False, **worker_opts: Any) -> dict:
    """Serve rollouts until stopped (SIGTERM, Ctrl-C) or the sampler fails for good.

    `make_sampler()` loads the model (any backend: the worker loads new weights through
    Sampler.load_weights); it is called after the address, token and problems are checked, so a
    refused configuration fails at once rather than after loading a model.

    Writes one JSON line to stdout when listening ({"event": "listening", "url": ..., "worker": ...})
    and one when stopping (the final health); people's messages go to stderr. Returns the final
    health. Raises BadInput before binding if the address needs a token and has none.
    """
    from spo_cli.console import info
    from spo_cli.errors import BadInput, SpoError
    from spo_cli.serve.worker import WorkerOptions
    from spo_cli.streams import index_by, read_records

    token = resolve_token(token)
    check_bind(host, token)
    if weights_dir is not None and not Path(weights_dir).is_dir():
        raise BadInput("--weights-dir is not a directory", path=weights_dir)
    problems = index_by(read_records(problems_spec, "problem", skip_invalid=skip_invalid), "id", "problem")
    if not problems:
        raise BadInput("no problems to sample", path=str(problems_spec))
    sampler = make_sampler()
    worker = RolloutWorker(sampler, problems, WorkerOptions(**worker_opts))
    server = WorkerServer(host, port, worker, token=token, weights_dir=weights_dir, verbose=verbose)
    worker.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="spo-serve", daemon=True)
    thread.start()
    sys.stdout.buffer.write(orjson.dumps({"event": "listening", "url": server.url,
                                          "worker": worker.opts.worker_id}) + b"\n")
    sys.stdout.flush()
    info(f"spo sample --serve: worker {worker.opts.worker_id} on {server.url} "
         f"({len(problems)} problems, {worker.opts.n} per problem, queue {worker.opts.queue_size}"
         f"{', token required' if token else ''}{', spool ' + worker.opts.spool if worker.opts.spool else ''})")
    try:
        while worker.alive:
            time.sleep(0.2)
        if worker.fatal is not None:
            raise SpoError(f"the rollout worker stopped: {worker.fatal}")
    finally:
        server.shutdown()
        server.server_close()
        worker.stop()
        final = worker.health()
        try:
            sys.stdout.buffer.write(orjson.dumps({"event": "stopped", **final}) + b"\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
    return final
