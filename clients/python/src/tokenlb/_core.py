"""The client's logic without I/O, shared by :class:`Client` and :class:`AsyncClient`.

What lives here, each part a plain object whose methods take ``now`` as an argument so it is
tested without clocks or sleeps (the design of the Rust client's ``fallback.rs``):

* :class:`Settings`: the constructor's arguments, checked once.
* :func:`parse_lease` / :func:`answer_error`: the manager's answers to ``get`` and
  ``report``, sorted into "the manager said no" (an exception carrying its error code) and
  "the manager could not be reached" (``None``, which starts the grace period). A 503 with
  the manager's JSON error body on ``get`` means "no eligible token" and is an answer; any
  other 5xx, a timeout or a connection error counts as unreachable.
* :class:`State`: the last-known good tokens (used round robin while the manager is
  unreachable, for at most the grace period, skipping those that failed), when the manager
  was first seen unreachable and last probed, and the **outbox**: the reports not delivered
  yet, in order, bounded (oldest dropped first). Successes wait there for the background
  batch; a failure is appended and the outbox is delivered at once, so a failure never
  overtakes an earlier success; while the manager is unreachable everything waits there.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple, Union

from ._outcome import Outcome
from .errors import (
    ConfigError,
    NoTokenAvailable,
    ProtocolError,
    Rejected,
    TokenlbError,
    Unauthorized,
)

log = logging.getLogger("tokenlb")

#: The manager takes at most this many reports in one ``{"reports":[…]}`` (DESIGN §9).
MAX_BATCH = 1000
#: Longest error sample sent with a report.
MAX_ERROR = 500

STRATEGIES = ("best", "round_robin", "weighted", "random", "least_in_flight", "latency")


@dataclass(frozen=True)
class Settings:
    """The checked constructor arguments (see :class:`tokenlb.Client` for their meaning)."""

    url: str
    key: Optional[str]
    pool: str
    strategy: Optional[str]
    timeout: float
    wait_ms: Optional[int]
    grace_period: float
    probe_interval: float
    max_cached_tokens: int
    max_queued_reports: int
    failed_token_cooldown: float
    batch_size: int
    flush_interval: float

    @staticmethod
    def check(
        url: str,
        key: Optional[str],
        pool: str,
        strategy: Optional[str],
        timeout: float,
        wait_ms: Optional[int],
        grace_period: float,
        probe_interval: float,
        max_cached_tokens: int,
        max_queued_reports: int,
        failed_token_cooldown: float,
        batch_size: int,
        flush_interval: float,
    ) -> "Settings":
        base = url.strip().rstrip("/")
        if not (base.startswith("http://") or base.startswith("https://")):
            raise ConfigError("url must start with http:// or https://")
        if key is not None and not key.strip():
            raise ConfigError("key must not be empty when given")
        if not pool.strip() or len(pool) > 128:
            raise ConfigError("pool must be a non-empty name of at most 128 characters")
        if strategy is not None and strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        if not timeout > 0 or not flush_interval > 0:
            raise ConfigError("timeout and flush_interval must be more than zero")
        if wait_ms is not None and not 0 <= wait_ms <= 600_000:
            raise ConfigError("wait_ms must be between 0 and 600000")
        if grace_period < 0 or probe_interval < 0 or failed_token_cooldown < 0:
            raise ConfigError("grace_period, probe_interval and failed_token_cooldown must not be negative")
        if max_cached_tokens < 1 or max_queued_reports < 1:
            raise ConfigError("max_cached_tokens and max_queued_reports must be at least 1")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ConfigError(f"batch_size must be between 1 and {MAX_BATCH}")
        return Settings(
            base, key, pool, strategy, float(timeout), wait_ms, float(grace_period),
            float(probe_interval), max_cached_tokens, max_queued_reports,
            float(failed_token_cooldown), batch_size, float(flush_interval),
        )

    def get_params(self) -> Dict[str, str]:
        params = {"pool": self.pool}
        if self.strategy is not None:
            params["strategy"] = self.strategy
        if self.wait_ms:
            params["wait_ms"] = str(self.wait_ms)
        return params

    def get_timeout(self) -> float:
        return self.timeout + (self.wait_ms or 0) / 1000.0

    def headers(self) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": "tokenlb-python/0.1"}
        if self.key is not None:
            h["Authorization"] = f"Bearer {self.key}"
        return h

    def is_loopback(self) -> bool:
        rest = self.url.split("://", 1)[1]
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return host.startswith("127.") or host.startswith("localhost") or host.startswith("[::1]")


@dataclass
class LeaseData:
    """What a lease is: the token and what its report needs. ``lease`` is ``None`` for a
    token from the cache (manager unreachable); its report goes by token id."""

    token: str
    id: str
    name: str
    pool: str
    lease: Optional[str]
    expires_at: Optional[str]
    cached: bool
    #: ``time.monotonic()`` when it was handed out (for the latency of ``lease()``/``call``).
    started: float
    reported: bool = False

    def masked(self) -> str:
        return mask(self.token)


def mask(secret: str) -> str:
    """``abcd…wxyz`` (the manager's masking); short secrets are hidden whole."""
    return f"{secret[:4]}…{secret[-4:]}" if len(secret) >= 12 else "…"


def parse_lease(body: bytes, default_pool: str, now: float) -> LeaseData:
    """The manager's ``get`` answer (DESIGN §3); the lease id is kept as text."""
    try:
        v = json.loads(body)
    except ValueError:
        raise ProtocolError("the get answer is not JSON", 200) from None
    if not isinstance(v, dict):
        raise ProtocolError("the get answer is not a JSON object", 200)
    token, tid, lease = v.get("token"), v.get("id"), v.get("lease")
    if not isinstance(token, str) or not token or not isinstance(tid, str) or not tid:
        raise ProtocolError("the get answer has no token or id", 200)
    if isinstance(lease, bool) or not isinstance(lease, (str, int)):
        raise ProtocolError("the lease id is neither a string nor a number", 200)
    name, pool, exp = v.get("name"), v.get("pool"), v.get("lease_expires_at")
    return LeaseData(
        token=token,
        id=tid,
        name=name if isinstance(name, str) else tid,
        pool=pool if isinstance(pool, str) else default_pool,
        lease=str(lease),
        expires_at=None if exp is None else str(exp),
        cached=False,
        started=now,
    )


def error_body(body: bytes) -> Optional[Tuple[str, str]]:
    """The manager's ``{"error":{"code","message"}}``, if that is what this is."""
    try:
        v = json.loads(body)
    except ValueError:
        return None
    if not isinstance(v, dict):
        return None
    return error_of(v.get("error"))


def error_of(err: Any) -> Optional[Tuple[str, str]]:
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        return None
    msg = err.get("message")
    return err["code"], (msg if isinstance(msg, str) else "")[:300]


def answer_error(
    status: int, body: bytes, headers: Mapping[str, str], *, on_get: bool
) -> Optional[TokenlbError]:
    """The exception a non-2xx answer stands for, or ``None`` for "unreachable"."""
    parsed = error_body(body)
    if on_get and status == 503 and parsed is not None:
        retry = headers.get("retry-after")
        try:
            retry_after: Optional[float] = float(retry) if retry is not None else None
        except ValueError:
            retry_after = None
        return NoTokenAvailable(parsed[0], parsed[1], status, retry_after)
    if status >= 500:
        return None
    code, message = parsed if parsed is not None else ("http_error", f"HTTP {status}")
    if status in (401, 403):
        return Unauthorized(code, message, status)
    return Rejected(code, message, status)


def scrub(text: str, secret: str) -> str:
    """Cuts the token's value out of an error sample and bounds its length."""
    if secret:
        text = text.replace(secret, mask(secret))
    return text[:MAX_ERROR]


def report_body(
    lease: LeaseData,
    outcome: Outcome,
    status: Optional[int],
    retry_after_s: Optional[float],
    error: Optional[str],
    latency_ms: Optional[float],
) -> Dict[str, Any]:
    """One report in the wire form: by lease, or by token id for a cached token."""
    body: Dict[str, Any] = {"outcome": outcome.value}
    if lease.lease is not None:
        body["lease"] = lease.lease
    else:
        body["id"] = lease.id
        body["success"] = outcome is Outcome.SUCCESS
    if latency_ms is not None:
        body["latency_ms"] = max(0, min(int(latency_ms), 2**32 - 1))
    if status is not None:
        body["status"] = int(status)
    if retry_after_s is not None:
        body["retry_after_s"] = max(0, int(retry_after_s + 0.999))
    if error and outcome is not Outcome.SUCCESS:
        body["error"] = scrub(error, lease.token)
    return body


def by_id(body: Mapping[str, Any], token_id: str) -> Dict[str, Any]:
    """The same report addressed by token id (the seed's form), for a lease the manager no
    longer knows (expired, or issued before a restart)."""
    b = {k: v for k, v in body.items() if k != "lease"}
    b["id"] = token_id
    b["success"] = body.get("outcome") == "success"
    return b


_LEASE_CODE = re.compile(r"lease", re.IGNORECASE)


def lease_refused(err: Optional[TokenlbError], body: Mapping[str, Any]) -> bool:
    """True when the manager refused a report for its lease (unknown, closed, expired,
    mismatched): then it is sent again by token id so the outcome still counts."""
    return (
        err is not None
        and isinstance(err, Rejected)
        and "lease" in body
        and (err.status in (404, 409, 410) or bool(_LEASE_CODE.search(err.code)))
    )


@dataclass
class Report:
    """One report in the outbox; ``done`` once the manager answered it (``error`` is its
    refusal, if it refused)."""

    body: Dict[str, Any]
    token_id: str
    done: bool = False
    error: Optional[TokenlbError] = None


def batch_results(body: bytes, count: int) -> List[Optional[TokenlbError]]:
    """The answer to ``{"reports":[…]}``: ``{"results":[{"ok":true}|{"error":{…}}]}``."""
    try:
        v = json.loads(body)
    except ValueError:
        raise ProtocolError("the batch report answer is not JSON", 200) from None
    results = v.get("results") if isinstance(v, dict) else None
    if not isinstance(results, list) or len(results) != count:
        raise ProtocolError(f"the batch report answer does not have {count} results", 200)
    out: List[Optional[TokenlbError]] = []
    for r in results:
        if isinstance(r, dict) and r.get("ok") is True:
            out.append(None)
            continue
        parsed = error_of(r.get("error") if isinstance(r, dict) else None)
        code, message = parsed if parsed is not None else ("report_refused", "refused")
        status = r["error"].get("status") if parsed is not None else None
        out.append(Rejected(code, message, status if isinstance(status, int) else _status_of(code)))
    return out


def _status_of(code: str) -> Optional[int]:
    """The HTTP status a single report would have had, from the error code."""
    if code in ("unknown_lease", "not_found", "unknown_token"):
        return 404
    if "mismatch" in code:
        return 409
    if code in ("forbidden", "unauthorized"):
        return 403
    return None


def batch_unsupported(status: int, body: bytes) -> bool:
    """True when a manager without the batch form refused ``{"reports":[…]}`` as an unknown
    field (an older release); the client then sends the reports one by one."""
    if status not in (400, 404, 405, 415, 422):
        return False
    return b"reports" in body


@dataclass
class _Cached:
    lease: LeaseData
    seen: float
    skip_until: Optional[float] = None


@dataclass
class State:
    """Everything the client remembers; guarded by the caller's lock, never across I/O."""

    settings: Settings
    tokens: List[_Cached] = field(default_factory=list)
    cursor: int = 0
    unreachable_since: Optional[float] = None
    last_probe: Optional[float] = None
    grace_over_logged: bool = False
    outbox: Deque[Report] = field(default_factory=deque)
    dropped: int = 0
    #: ``None`` until the manager answered a batch; ``False`` for a manager without it.
    batch_supported: Optional[bool] = None
    batches_sent: int = 0

    # -- the cache of last-known good tokens -------------------------------------------
    def remember(self, lease: LeaseData, now: float) -> None:
        for t in self.tokens:
            if t.lease.id == lease.id:
                t.lease, t.seen, t.skip_until = lease, now, None
                return
        if len(self.tokens) >= self.settings.max_cached_tokens:
            oldest = min(range(len(self.tokens)), key=lambda i: self.tokens[i].seen)
            del self.tokens[oldest]
        self.tokens.append(_Cached(lease, now))

    def learn(self, token_id: str, outcome: Outcome, retry_after_s: Optional[float], now: float) -> None:
        """An auth failure drops a cached token; other token failures skip it for a while;
        a success clears the skip."""
        if outcome is Outcome.AUTH:
            self.tokens = [t for t in self.tokens if t.lease.id != token_id]
            return
        for t in self.tokens:
            if t.lease.id == token_id:
                if outcome is Outcome.SUCCESS:
                    t.skip_until = None
                elif outcome.is_token_failure:
                    wait = retry_after_s if retry_after_s is not None else self.settings.failed_token_cooldown
                    t.skip_until = now + wait

    def pick(self, now: float) -> Union[LeaseData, str]:
        """A cached token (round robin over the usable ones) while the grace period lasts,
        or why there is none."""
        grace = self.settings.grace_period
        if grace <= 0:
            return "the grace period is off"
        down_for = now - (self.unreachable_since if self.unreachable_since is not None else now)
        if down_for >= grace:
            if not self.grace_over_logged:
                self.grace_over_logged = True
                log.error(
                    "tokenlb manager %s still unreachable and the grace period is over: "
                    "no token until it is back", self.settings.url,
                )
            return f"the grace period of {grace:g} s is over (unreachable for {down_for:.0f} s)"
        n = len(self.tokens)
        for step in range(n):
            i = (self.cursor + step) % n
            t = self.tokens[i]
            if t.skip_until is None or t.skip_until <= now:
                self.cursor = (i + 1) % n
                c = t.lease
                return LeaseData(c.token, c.id, c.name, c.pool, None, None, True, now)
        if n == 0:
            return "no cached token (none was leased before the manager went away)"
        return f"all {n} cached tokens failed recently"

    # -- reachability -------------------------------------------------------------------
    @property
    def down(self) -> bool:
        return self.unreachable_since is not None

    def should_probe(self, now: float) -> bool:
        """Always when the manager is up; at most once per ``probe_interval`` while down."""
        if self.unreachable_since is None or self.last_probe is None:
            return True
        return now - self.last_probe >= self.settings.probe_interval

    def mark_down(self, now: float, cause: str) -> None:
        self.last_probe = now
        if self.unreachable_since is not None:
            return
        self.unreachable_since = now
        self.grace_over_logged = False
        log.warning(
            "tokenlb manager %s unreachable (%s), using %d cached tokens for up to %g s",
            self.settings.url, cause, len(self.tokens), self.settings.grace_period,
        )

    def mark_up(self, now: float) -> bool:
        """The manager answered; True when it had been unreachable."""
        self.last_probe = None
        since, self.unreachable_since = self.unreachable_since, None
        if since is not None:
            log.info(
                "tokenlb manager %s reachable again after %.0f s; %d reports queued",
                self.settings.url, now - since, len(self.outbox),
            )
        return since is not None

    # -- the outbox ---------------------------------------------------------------------
    def enqueue(self, report: Report) -> None:
        while len(self.outbox) >= self.settings.max_queued_reports:
            old = self.outbox.popleft()
            old.done = True
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("tokenlb: %d reports dropped (queue full)", self.dropped)
        self.outbox.append(report)

    def take(self, now: float) -> List[Report]:
        """Up to one batch from the outbox, unless the manager is down and not due for a
        probe (then the reports keep waiting)."""
        if self.down and not self.should_probe(now):
            return []
        n = min(len(self.outbox), MAX_BATCH)
        return [self.outbox.popleft() for _ in range(n)]

    def give_back(self, reports: List[Report]) -> None:
        """Puts reports that could not be sent back at the front, in order, within the bound."""
        for r in reversed(reports):
            if len(self.outbox) >= self.settings.max_queued_reports:
                r.done = True
                self.dropped += 1
                continue
            self.outbox.appendleft(r)

    def finish(self, reports: List[Report], errors: List[Optional[TokenlbError]]) -> None:
        """Records the manager's answers. A report refused for its lease goes back to the
        front of the outbox by token id (once: that form has no lease), so the outcome
        still counts and its waiter gets the final answer."""
        again: List[Report] = []
        for r, e in zip(reports, errors):
            if lease_refused(e, r.body):
                r.body = by_id(r.body, r.token_id)
                again.append(r)
                continue
            r.done, r.error = True, e
            if e is not None:
                log.warning("tokenlb: report for token %s refused: %s", r.token_id, e)
        for r in reversed(again):
            self.outbox.appendleft(r)

    def max_rounds(self) -> int:
        """Bound on the batches one flush sends (the outbox, plus its retries by id)."""
        return 2 * (self.settings.max_queued_reports // MAX_BATCH + 1) + 2
