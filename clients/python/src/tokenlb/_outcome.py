"""Outcome classes (DESIGN §2), shared by the manager, the clients and the web API.

The class of a report decides what the manager does with the token: ``auth`` makes it
invalid at once, ``rate_limited`` / ``quota_exhausted`` cool it until the retry-after,
repeated ``transient`` failures cool it, ``client_error`` never counts against it and
``unknown`` counts neither way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Union


class Outcome(str, enum.Enum):
    """What happened when a leased token was used (the manager's ``outcome`` field)."""

    SUCCESS = "success"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    TRANSIENT = "transient"
    CLIENT_ERROR = "client_error"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def is_token_failure(self) -> bool:
        """True for the token's own failures: the ones worth another token."""
        return self in _TOKEN_FAILURES

    @classmethod
    def parse(cls, value: Union["Outcome", str]) -> "Outcome":
        """``Outcome`` from itself or its wire name; ``ValueError`` names the valid ones."""
        if isinstance(value, Outcome):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(o.value for o in cls)
            raise ValueError(f"unknown outcome {value!r}; use one of {names}") from None


_TOKEN_FAILURES = frozenset(
    {Outcome.AUTH, Outcome.RATE_LIMITED, Outcome.QUOTA_EXHAUSTED, Outcome.TRANSIENT}
)

OutcomeLike = Union[Outcome, str]


def is_retryable(outcome: OutcomeLike) -> bool:
    """Whether ``call`` tries another token after a failure of this class (auth,
    rate limited, quota, transient), as the Rust client's ``is_retryable``."""
    return Outcome.parse(outcome).is_token_failure


@dataclass(frozen=True)
class Classified:
    """A classified upstream answer: the class plus what the report carries with it."""

    outcome: Outcome
    status: Optional[int] = None
    retry_after_s: Optional[int] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS
