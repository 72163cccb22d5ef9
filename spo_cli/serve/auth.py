"""Who may talk to a rollout worker: loopback by default, a shared token for anything else.

Rules (DESIGN.md, "Asynchronous, distributed"):
- A worker bound to a loopback address (127.0.0.0/8, ::1, "localhost") needs no token; with a
  token configured, every request must carry it anyway.
- Any other bind address (0.0.0.0, a LAN address, a host name) needs a token, and the check
  happens before the socket is bound: a worker that would be open to the network never starts.
- The token comes from --token or the SPO_TOKEN environment variable (preferred: a command line
  is visible to every user of the machine in `ps`). Requests carry it as
  `Authorization: Bearer <token>`; comparison is constant-time (hmac.compare_digest).
- The token authenticates; it does not encrypt. Traffic is plain HTTP: run workers and learners
  on a trusted cluster network or tunnel it (see docs/async.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from spo_cli.errors import BadInput

ENV_TOKEN = "SPO_TOKEN"
MIN_TOKEN_CHARS = 16


def resolve_token(token: str | None) -> str | None:
    """The token from the option, else from $SPO_TOKEN; None when neither is set (or empty)."""
    t = token if token is not None else os.environ.get(ENV_TOKEN)
    return t or None


def is_loopback(host: str) -> bool:
    """True for loopback literals and 'localhost'. Any other name counts as non-loopback: a name
    may resolve to anything, so it is treated as the network address it could be."""
    h = host.strip().strip("[]").lower()
    if h in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (BadInput) a non-loopback bind without a token, or with a token too short to be a
    secret. Call before binding."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise BadInput(f"the token must be at least {MIN_TOKEN_CHARS} characters "
                       "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if not is_loopback(host) and token is None:
        raise BadInput(f"refusing to serve on {host!r} without a token: any address other than "
                       f"loopback needs --token or ${ENV_TOKEN} (learners must send the same one)")


def bearer(token: str | None) -> dict[str, str]:
    """The request header that carries a token (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def authorized(header: str | None, token: str | None) -> bool:
    """Does an Authorization header carry the expected token? Always True without a token."""
    if token is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].encode("utf-8", "surrogateescape"),
                               token.encode("utf-8", "surrogateescape"))
