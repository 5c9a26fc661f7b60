"""Classifiers: what an upstream's answer means for the token that made it.

The client cannot know what an upstream's reply means, so it is classified into the shared
outcome classes (DESIGN §2). The class decides what the manager learns about the token and
whether :meth:`Client.call` tries another token. Three sources are covered:

* **HTTP statuses** (:func:`classify_http_status`, :func:`classify_http_response`) as the
  proxy's defaults (DESIGN §10): 2xx/3xx success; 401, 403 auth; 402 quota_exhausted; 429
  rate_limited (``Retry-After`` / ``x-ratelimit-reset*`` read as the recovery time); 503
  with ``Retry-After`` rate_limited; 408 and 5xx transient; other 4xx client_error.
* **Wopan replies** (:func:`classify_wopan`, :func:`raise_for_wopan`), the table of the
  Rust ``tokenlb-wopan`` crate (``crates/wopan/src/error.rs``):

  ============================  ==================  ==========================================
  reply                         class               why
  ============================  ==================  ==========================================
  ``RSP_CODE`` 0000             success
  ``RSP_CODE`` 9999, 1001       auth                expired / invalid access token
  ``RSP_CODE`` 8005             auth                login or refresh rejected
  ``RSP_CODE`` 120002           client_error        wrong familyId: the request's fault
  any other ``RSP_CODE``        unknown             no evidence against the token
  ``STATUS`` other than "200"   transient           the gateway itself failed
  HTTP 429, 503                 rate_limited        with ``Retry-After`` when sent
  HTTP 402, 509                 quota_exhausted     509 bandwidth limit exceeded
  HTTP 401, 403                 auth
  other HTTP 4xx                client_error
  other HTTP 5xx                transient
  not JSON / not the envelope   transient           garbage comes from proxies, not tokens
  ============================  ==================  ==========================================

* **Exceptions** (:func:`classify_exception`): :class:`UpstreamError` (and
  :class:`WopanError`) carry their class; ``httpx.HTTPStatusError`` is classified by its
  response; timeouts and connection errors are transient; anything else is not classified
  (``None``).
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Mapping, Optional, Union

import httpx

from ._outcome import Classified, Outcome, OutcomeLike

__all__ = [
    "UpstreamError",
    "WopanError",
    "classify_exception",
    "classify_http_response",
    "classify_http_status",
    "classify_wopan",
    "raise_for_wopan",
    "retry_after_from_headers",
    "wopan_code_outcome",
    "wopan_http_outcome",
]

#: Longest upstream text kept in an error sample.
_MAX_TEXT = 120


class UpstreamError(Exception):
    """Raise it from the function given to ``call`` to say what the upstream did, e.g.
    ``raise UpstreamError("rate_limited", "HTTP 429", status=429, retry_after_s=30)``."""

    def __init__(
        self,
        outcome: OutcomeLike,
        message: Optional[str] = None,
        *,
        status: Optional[int] = None,
        retry_after_s: Optional[int] = None,
    ) -> None:
        out = Outcome.parse(outcome)
        super().__init__(message or out.value)
        self.classified = Classified(out, status, retry_after_s, message or out.value)

    @property
    def outcome(self) -> Outcome:
        return self.classified.outcome

    @property
    def status(self) -> Optional[int]:
        return self.classified.status

    @property
    def retry_after_s(self) -> Optional[int]:
        return self.classified.retry_after_s


class WopanError(UpstreamError):
    """A Wopan reply that is not a success, classified (see the module table).
    ``rsp_code`` is the business ``RSP_CODE`` when there was one."""

    def __init__(self, classified: Classified, rsp_code: Optional[str] = None) -> None:
        super().__init__(
            classified.outcome,
            classified.error,
            status=classified.status,
            retry_after_s=classified.retry_after_s,
        )
        self.classified = classified
        self.rsp_code = rsp_code


def classify_http_status(status: int, has_retry_after: bool = False) -> Outcome:
    """The class of an upstream HTTP status (DESIGN §10 defaults)."""
    if 200 <= status <= 399:
        return Outcome.SUCCESS
    if status in (401, 403):
        return Outcome.AUTH
    if status == 402:
        return Outcome.QUOTA_EXHAUSTED
    if status == 429 or (status == 503 and has_retry_after):
        return Outcome.RATE_LIMITED
    if status == 408 or 500 <= status <= 599:
        return Outcome.TRANSIENT
    if 400 <= status <= 499:
        return Outcome.CLIENT_ERROR
    return Outcome.UNKNOWN


def retry_after_from_headers(
    headers: Mapping[str, str], now: Optional[float] = None
) -> Optional[int]:
    """Seconds until recovery from ``Retry-After`` (seconds or an HTTP date) or
    ``x-ratelimit-reset*`` (seconds, or a Unix time when it is one); ``None`` if absent."""
    lower = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value = lower.get("retry-after")
    if value is not None:
        secs = _seconds(value, now, dates=True)
        if secs is not None:
            return secs
    for name in sorted(k for k in lower if k.startswith("x-ratelimit-reset")):
        secs = _seconds(lower[name], now, dates=False)
        if secs is not None:
            return secs
    return None


def _seconds(value: str, now: float, *, dates: bool) -> Optional[int]:
    text = value.strip().rstrip("s")
    try:
        number = float(text)
    except ValueError:
        if not dates:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0, int(when.timestamp() - now + 0.999))
    if number != number or number < 0:  # NaN or negative
        return None
    if number > 1_000_000_000:  # a Unix time, not a delay
        return max(0, int(number - now + 0.999))
    return int(number + 0.999)


def classify_http_response(response: httpx.Response) -> Classified:
    """:func:`classify_http_status` of a response, with its retry-after and status."""
    retry = retry_after_from_headers(response.headers)
    outcome = classify_http_status(response.status_code, retry is not None)
    error = None if outcome is Outcome.SUCCESS else f"HTTP {response.status_code}"
    return Classified(outcome, response.status_code, retry, error)


def wopan_code_outcome(code: str) -> Outcome:
    """The class of a Wopan business ``RSP_CODE``."""
    if code == "0000":
        return Outcome.SUCCESS
    if code in ("9999", "1001", "8005"):
        return Outcome.AUTH
    if code == "120002":
        return Outcome.CLIENT_ERROR
    return Outcome.UNKNOWN


def wopan_http_outcome(status: int) -> Outcome:
    """The class of a non-2xx HTTP status from the Wopan dispatcher or download host."""
    if status in (429, 503):
        return Outcome.RATE_LIMITED
    if status in (402, 509):
        return Outcome.QUOTA_EXHAUSTED
    if status == 408:
        return Outcome.CLIENT_ERROR
    return classify_http_status(status)


WopanReply = Union[httpx.Response, Mapping[str, Any], str, bytes]


def classify_wopan(
    reply: WopanReply,
    *,
    status: Optional[int] = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Classified:
    """Classifies a Wopan dispatcher (or download host) reply: an ``httpx.Response``, or
    the envelope as a dict / JSON text together with the HTTP ``status`` (200 if not given)."""
    if isinstance(reply, httpx.Response):
        status, headers = reply.status_code, reply.headers
        body: Any = reply.content
    else:
        body = reply
    status = 200 if status is None else status
    if not 200 <= status <= 299:
        retry = retry_after_from_headers(headers or {})
        return Classified(wopan_http_outcome(status), status, retry, f"Wopan HTTP {status}")
    envelope = _envelope(body)
    if envelope is None:
        return Classified(Outcome.TRANSIENT, status, None, "Wopan: malformed response")
    gateway = envelope.get("STATUS")
    if str(gateway) != "200":
        msg = _text(envelope.get("MSG"))
        return Classified(Outcome.TRANSIENT, status, None, f"Wopan gateway status {_text(gateway)}: {msg}")
    rsp = envelope.get("RSP")
    if not isinstance(rsp, Mapping) or not isinstance(rsp.get("RSP_CODE"), str):
        return Classified(Outcome.TRANSIENT, status, None, "Wopan: malformed response")
    code = rsp["RSP_CODE"]
    outcome = wopan_code_outcome(code)
    if outcome is Outcome.SUCCESS:
        return Classified(outcome, status)
    desc = _text(rsp.get("RSP_DESC"))
    return Classified(outcome, status, None, f"Wopan answered {_text(code)} {desc}".rstrip())


def raise_for_wopan(response: httpx.Response) -> Mapping[str, Any]:
    """Returns the parsed envelope of a successful Wopan reply; raises :class:`WopanError`
    (classified) for any other."""
    verdict = classify_wopan(response)
    if verdict.outcome is not Outcome.SUCCESS:
        code = None
        envelope = _envelope(response.content) if response.status_code == 200 else None
        if envelope is not None and isinstance(envelope.get("RSP"), Mapping):
            raw = envelope["RSP"].get("RSP_CODE")
            code = raw if isinstance(raw, str) else None
        raise WopanError(verdict, code)
    envelope = _envelope(response.content)
    assert envelope is not None  # classify_wopan checked it
    return envelope


def _envelope(body: Any) -> Optional[Mapping[str, Any]]:
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
    return body if isinstance(body, Mapping) else None


def _text(value: Any) -> str:
    s = value if isinstance(value, str) else ("" if value is None else str(value))
    return s if len(s) <= _MAX_TEXT else s[:_MAX_TEXT] + "…"


def classify_exception(exc: BaseException) -> Optional[Classified]:
    """The class of an exception raised while using a token, or ``None`` when it says
    nothing about the token (a bug in the caller's code, say)."""
    if isinstance(exc, UpstreamError):
        return exc.classified
    if isinstance(exc, httpx.HTTPStatusError):
        return classify_http_response(exc.response)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return Classified(Outcome.CLIENT_ERROR, error=type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException):
        return Classified(Outcome.TRANSIENT, error="timed out")
    if isinstance(exc, httpx.TransportError):
        return Classified(Outcome.TRANSIENT, error=f"network error: {type(exc).__name__}")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return Classified(Outcome.TRANSIENT, error=f"network error: {type(exc).__name__}")
    try:  # asyncio.TimeoutError is not TimeoutError before Python 3.11
        import asyncio

        if isinstance(exc, asyncio.TimeoutError):
            return Classified(Outcome.TRANSIENT, error="timed out")
    except ImportError:  # pragma: no cover
        pass
    return None
