"""What the sync and the async client share beyond the I/O-free core: the lease's read-only
view, the client status snapshot, and how an exception becomes a report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import httpx

from . import _core
from ._core import LeaseData, State, scrub
from ._outcome import Classified, Outcome
from .classify import classify_exception
from .errors import ConfigError, ManagerUnreachable, ProtocolError


class LeaseView:
    """The read-only fields of a lease, shared by :class:`Lease` and :class:`AsyncLease`."""

    _data: LeaseData

    @property
    def token(self) -> str:
        """The token's secret value, to send upstream."""
        return self._data.token

    @property
    def id(self) -> str:
        """The token's public id."""
        return self._data.id

    @property
    def name(self) -> str:
        """The token's display name."""
        return self._data.name

    @property
    def pool(self) -> str:
        """The token's pool."""
        return self._data.pool

    @property
    def lease(self) -> Optional[str]:
        """The manager's lease id; ``None`` for a token from the cache."""
        return self._data.lease

    @property
    def expires_at(self) -> Optional[str]:
        """When the manager closes the lease as ``unknown`` unless it is reported (RFC 3339)."""
        return self._data.expires_at

    @property
    def cached(self) -> bool:
        """True when the token came from the cache because the manager was unreachable."""
        return self._data.cached

    @property
    def reported(self) -> bool:
        """Whether this lease was reported."""
        return self._data.reported

    def __repr__(self) -> str:
        d = self._data
        return (
            f"{type(self).__name__}(id={d.id!r}, name={d.name!r}, pool={d.pool!r}, "
            f"token={d.masked()!r}, lease={d.lease!r}, cached={d.cached!r})"
        )


@dataclass(frozen=True)
class ClientStatus:
    """A snapshot of the client's view, for health endpoints and tests."""

    #: False while the manager is unreachable.
    manager_reachable: bool
    #: Tokens that could stand in during the grace period.
    cached_tokens: int
    #: Reports not delivered yet (waiting for the batch or for the manager).
    queued_reports: int
    #: Reports dropped because the outbox was full.
    dropped_reports: int
    #: Whether the manager takes batch reports (``None`` until one was sent).
    batch_reports: Optional[bool]
    #: Batch requests the manager answered.
    batches_sent: int


def verdict_of(
    exc: BaseException,
    classify: Optional[Callable[[BaseException], Optional[Classified]]],
    default: Outcome,
    secret: str,
) -> Classified:
    """How an exception raised while using a token is reported."""
    v = classify(exc) if classify is not None else None
    if v is None:
        v = classify_exception(exc)
    if v is None:
        v = Classified(default, error=f"{type(exc).__name__}: {exc}")
    if v.error is not None:
        v = Classified(v.outcome, v.status, v.retry_after_s, scrub(v.error, secret))
    return v


def release_verdict() -> Classified:
    """A lease given back unused (interrupted, or a token this call already tried)."""
    return Classified(Outcome.UNKNOWN, error="released")


def cause_of(e: httpx.HTTPError) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    if isinstance(e, httpx.ConnectError):
        return "connection failed"
    return type(e).__name__


def ms_since(lease: LeaseView) -> float:
    return (time.monotonic() - lease._data.started) * 1000.0


def status_of(state: State) -> ClientStatus:
    return ClientStatus(
        manager_reachable=not state.down,
        cached_tokens=len(state.tokens),
        queued_reports=len(state.outbox),
        dropped_reports=state.dropped,
        batch_reports=state.batch_supported,
        batches_sent=state.batches_sent,
    )


def stats_answer(r: httpx.Response) -> Dict[str, Any]:
    if r.status_code == 200:
        try:
            v = r.json()
        except ValueError:
            raise ProtocolError("the stats answer is not JSON", 200) from None
        if not isinstance(v, dict):
            raise ProtocolError("the stats answer is not a JSON object", 200)
        return v
    err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
    if err is None:
        raise ManagerUnreachable(f"manager answered {r.status_code}")
    raise err


def renew_body(lease: LeaseView, extend_s: Optional[float]) -> Dict[str, Any]:
    """``POST /api/token/renew``'s body (DESIGN §9)."""
    body: Dict[str, Any] = {"lease": lease.lease}
    if extend_s is not None:
        if not extend_s > 0:
            raise ConfigError("extend_s must be more than zero")
        body["extend_s"] = int(extend_s + 0.999)
    return body


def renew_answer(lease: LeaseView, r: httpx.Response) -> None:
    """Takes the new deadline from the manager's answer, or raises its refusal."""
    if r.status_code == 200:
        try:
            v = r.json()
        except ValueError:
            raise ProtocolError("the renew answer is not JSON", 200) from None
        exp = v.get("lease_expires_at") if isinstance(v, dict) else None
        if exp is not None:
            lease._data.expires_at = str(exp)
        return
    err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
    if err is None:
        raise ManagerUnreachable(f"manager answered {r.status_code}")
    raise err
