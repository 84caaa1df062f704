"""Tracking URIs: the one in use, without its password (``redact``), with it again at
delivery (``delivery_uri``), and whether an HTTP server answers. Imports no MLflow."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit, urlunsplit

DEFAULT_URI = "sqlite:///mlflow.db"


def tracking_uri(uri: str | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or uri or DEFAULT_URI


_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "token", "secret", "access_token"})


def redact(url: object) -> object:
    """``url`` without its password (``scheme://user:***@host/...``; a ``password=``,
    ``token=``... query value too). Anything that is not such a URL comes back unchanged;
    so does a URL without credentials, character for character."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    out, netloc, query = url, parts.netloc, parts.query
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:  # edited in place: urlunsplit would drop sqlite:////'s slashes
            out = out.replace(netloc, f"{userinfo.split(':', 1)[0]}:***@{host}", 1)
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            hidden = "&".join(
                f"{k}=***" if k.lower() in _SECRET_QUERY_KEYS else f"{k}={v}" for k, v in pairs
            )
            out = out.replace(f"?{query}", f"?{hidden}", 1)
    return out


class MissingCredentials(RuntimeError):
    pass


def delivery_uri(stored: str) -> str:
    """The URI to deliver a journal to: its stored (redacted) URI, with the password taken
    from ``MLFLOW_TRACKING_URI`` when that is the same URI with its credentials."""
    if redact(stored) == stored and "***" not in stored:
        return stored
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and redact(env) == stored:
        return env
    raise MissingCredentials(
        f"the journal's MLflow URI {stored} needs its password: set MLFLOW_TRACKING_URI to "
        "that URI with the password"
    )


def _unreachable(uri: str, timeout: float = 3.0) -> str | None:
    """Why an HTTP tracking server does not answer (None when it does, or for a database)."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    base = urlsplit(uri)
    host = base.hostname or ""
    port = f":{base.port}" if base.port else ""
    url = urlunsplit((base.scheme, host + port, base.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            return None if resp.status < 500 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"HTTP {err.code}"  # up, /health not served
    except OSError as err:
        return f"{type(err).__name__}: {getattr(err, 'reason', err)}"


@contextlib.contextmanager
def _few_http_retries() -> Iterator[None]:
    """MLflow retries a failing request 7 times with exponential backoff (minutes): a
    server that goes away mid-flush should cost seconds; the journal is kept anyway."""
    saved = {k: os.environ.get(k) for k in _HTTP_LIMITS}
    for k, v in _HTTP_LIMITS.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
