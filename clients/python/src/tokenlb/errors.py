"""Exceptions of the tokenlb client.

Every exception is a :class:`TokenlbError` carrying ``code`` (the manager's error code from
its ``{"error":{"code","message"}}`` body, or one of the client's own codes below),
``message`` and, when the manager answered, its HTTP ``status``. Messages never contain a
token or a client key.

Client-side codes: ``unreachable`` (manager down and no cached token can stand in),
``config`` (bad constructor argument), ``protocol`` (an answer that cannot be understood),
``already_reported`` (a lease reported twice), ``retries_exhausted`` (``call`` gave up).
"""

from __future__ import annotations

from typing import Optional

from ._outcome import Outcome


class TokenlbError(Exception):
    """Base class: ``code``, ``message`` and the manager's HTTP ``status`` if it answered."""

    def __init__(self, code: str, message: str, status: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ConfigError(TokenlbError, ValueError):
    """A constructor argument is unusable (names the argument and why)."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message)


class Unauthorized(TokenlbError):
    """The manager answered 401/403: the client key is missing, wrong or out of scope."""


class NoTokenAvailable(TokenlbError):
    """The manager has no eligible token in the pool now (503 ``no_token_available``);
    ``retry_after`` is the manager's ``Retry-After`` in seconds, if it gave one."""

    def __init__(
        self, code: str, message: str, status: Optional[int], retry_after: Optional[float]
    ) -> None:
        super().__init__(code, message, status)
        self.retry_after = retry_after


class Rejected(TokenlbError):
    """The manager refused the request (a 4xx other than 401/403), e.g. ``unknown_lease``,
    ``unknown_pool``, ``invalid``."""


class ManagerUnreachable(TokenlbError):
    """The manager could not be reached (connection, timeout, 5xx) and no cached token can
    stand in: the grace period is off or over, or every cached token failed recently."""

    def __init__(self, message: str) -> None:
        super().__init__("unreachable", message)


class ProtocolError(TokenlbError):
    """The manager's answer could not be understood."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__("protocol", message, status)


class AlreadyReported(TokenlbError):
    """A lease can be reported once."""

    def __init__(self) -> None:
        super().__init__("already_reported", "this lease was already reported")


class RetriesExhausted(TokenlbError):
    """``call`` gave up: every attempt failed in a way another token might have fixed, or no
    further token could be leased. ``attempts`` ran; ``outcome`` is the last attempt's class;
    the last exception of the operation is ``__cause__`` (also ``last_error``);
    ``no_token`` is the lease failure that stopped it early, if one did."""

    def __init__(
        self,
        attempts: int,
        outcome: Optional[Outcome],
        last_error: Optional[BaseException],
        no_token: Optional[TokenlbError] = None,
    ) -> None:
        why = f"no further token ({no_token})" if no_token is not None else "attempts used up"
        last = f"; last failure {outcome.value}: {last_error}" if outcome is not None else ""
        super().__init__("retries_exhausted", f"gave up after {attempts} attempt(s): {why}{last}")
        self.attempts = attempts
        self.outcome = outcome
        self.last_error = last_error
        self.no_token = no_token
