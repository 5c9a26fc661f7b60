"""The synchronous client: :class:`Client` and its :class:`Lease`.

A ``Client`` is safe to share between threads. Its background reporter is one daemon thread,
started on the first queued success, that sends the outbox as a batch every
``flush_interval`` seconds or as soon as ``batch_size`` reports wait; a failure is delivered
on the caller's thread, together with whatever waits before it, so the manager has taken a
failing token out of rotation before the next attempt leases another. Sends are serialised
by one lock, so reports reach the manager in the order they were made. ``close()`` delivers
what is queued.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, TypeVar

import httpx

from . import _core
from ._common import (
    ClientStatus,
    LeaseView,
    cause_of,
    ms_since,
    release_verdict,
    renew_answer,
    renew_body,
    stats_answer,
    status_of,
    verdict_of,
)
from ._core import LeaseData, Report, Settings, State, log
from ._outcome import Classified, Outcome, OutcomeLike
from .errors import (
    AlreadyReported,
    ConfigError,
    ManagerUnreachable,
    NoTokenAvailable,
    ProtocolError,
    RetriesExhausted,
    TokenlbError,
)

T = TypeVar("T")


class Lease(LeaseView):
    """A leased token: ``token`` (the secret to send upstream), ``id``, ``name``, ``pool``,
    ``lease`` (the manager's lease id; ``None`` for a cached token), ``expires_at`` (when the
    manager closes it as ``unknown`` if it is not reported) and ``cached`` (True when it came
    from the client's cache because the manager was unreachable). Printing it masks the token."""

    def __init__(self, client: "Client", data: LeaseData) -> None:
        self._client = client
        self._data = data

    def report(
        self,
        outcome: OutcomeLike,
        status: Optional[int] = None,
        retry_after_s: Optional[float] = None,
        error: Optional[str] = None,
        latency_ms: Optional[float] = None,
    ) -> None:
        """Reports how the token did (see :meth:`Client.report`)."""
        self._client.report(self, outcome, status, retry_after_s, error, latency_ms)

    def renew(self, extend_s: Optional[float] = None) -> None:
        """Moves the lease's deadline (see :meth:`Client.renew`)."""
        self._client.renew(self, extend_s)


class Client:
    """A handle on a tokenlb manager (DESIGN §12).

    ``url`` is the manager's base URL; ``key`` its client key (sent as ``Authorization:
    Bearer``); ``pool`` and ``strategy`` what ``get`` asks for (``strategy=None`` leaves it
    to the pool's default). Keyword arguments, with the Rust client's defaults:

    * ``timeout`` (5 s): one request to the manager (``get`` adds ``wait_ms``);
    * ``wait_ms``: how long the manager may wait for an eligible token before its 503;
    * ``grace_period`` (300 s): how long the last good tokens stand in while the manager is
      unreachable (0 turns that off); ``probe_interval`` (2 s): how often the manager is
      tried again meanwhile; ``max_cached_tokens`` (32); ``failed_token_cooldown`` (30 s):
      how long a cached token that failed is skipped (an auth failure drops it);
    * ``max_queued_reports`` (1000): the outbox bound (oldest dropped beyond it);
      ``batch_size`` (100) and ``flush_interval`` (1 s): when the background sends;
    * ``transport``: an ``httpx`` transport, for tests or custom TLS.
    """

    def __init__(
        self,
        url: str,
        key: Optional[str] = None,
        pool: str = "default",
        strategy: Optional[str] = "best",
        *,
        timeout: float = 5.0,
        wait_ms: Optional[int] = None,
        grace_period: float = 300.0,
        probe_interval: float = 2.0,
        max_cached_tokens: int = 32,
        max_queued_reports: int = 1000,
        failed_token_cooldown: float = 30.0,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self._settings = Settings.check(
            url, key, pool, strategy, timeout, wait_ms, grace_period, probe_interval,
            max_cached_tokens, max_queued_reports, failed_token_cooldown, batch_size,
            flush_interval,
        )
        s = self._settings
        self._state = State(s)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._http = httpx.Client(
            base_url=s.url,
            headers=s.headers(),
            timeout=s.timeout,
            trust_env=not s.is_loopback(),
            transport=transport,
        )

    # -- context management -----------------------------------------------------------------
    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "…" if self._settings.key else None
        return f"Client(url={self._settings.url!r}, pool={self._settings.pool!r}, key={key!r})"

    # -- get ----------------------------------------------------------------------------------
    def get(self) -> Lease:
        """Leases a token (``GET /api/token/get``).

        Raises :class:`NoTokenAvailable` when the manager has none eligible (its answer is
        trusted: no cached token is used then), :class:`Unauthorized` for a bad key,
        :class:`Rejected` for other refusals. While the manager is unreachable, returns a
        cached token (``lease.cached``) during the grace period, then raises
        :class:`ManagerUnreachable`."""
        self._check_open()
        s = self._settings
        now = time.monotonic()
        with self._lock:
            probe = self._state.should_probe(now)
        if not probe:
            return self._cached("not answering", now)
        try:
            r = self._http.get("/api/token/get", params=s.get_params(), timeout=s.get_timeout())
        except httpx.HTTPError as e:
            return self._down(cause_of(e), now)
        if r.status_code == 200:
            data = _core.parse_lease(r.content, s.pool, time.monotonic())
            with self._lock:
                self._answered(now)
                self._state.remember(data, now)
            return Lease(self, data)
        err = _core.answer_error(r.status_code, r.content, r.headers, on_get=True)
        if err is None:
            return self._down(f"manager answered {r.status_code}", now)
        with self._lock:
            self._answered(now)
        raise err

    def _down(self, cause: str, now: float) -> Lease:
        with self._lock:
            self._state.mark_down(now, cause)
        return self._cached(cause, now)

    def _cached(self, cause: str, now: float) -> Lease:
        with self._lock:
            picked = self._state.pick(now)
        if isinstance(picked, str):
            raise ManagerUnreachable(f"{cause}; {picked}")
        return Lease(self, picked)

    def _answered(self, now: float) -> None:
        """Under the lock: the manager answered; wake the reporter if reports wait."""
        if self._state.mark_up(now) and self._state.outbox:
            self._start_reporter()
            self._wake.notify()

    # -- report -------------------------------------------------------------------------------
    def report(
        self,
        lease: Lease,
        outcome: OutcomeLike,
        status: Optional[int] = None,
        retry_after_s: Optional[float] = None,
        error: Optional[str] = None,
        latency_ms: Optional[float] = None,
    ) -> None:
        """Reports a lease's outcome (``POST /api/token/report``).

        A success (and ``unknown``) is queued and sent in a batch in the background; any
        other outcome is delivered now, with the reports queued before it. While the manager
        is unreachable reports wait (bounded) and go out when it answers again: that is not
        an error. A lease the manager no longer knows is reported again by token id. Raises
        the manager's refusal of a failure report (:class:`Rejected`, :class:`Unauthorized`),
        and :class:`AlreadyReported` for a second report of the same lease."""
        out = Outcome.parse(outcome)
        data = lease._data
        if self._http.is_closed:
            raise TokenlbError("closed", "the client is closed")
        with self._lock:
            if data.reported:
                raise AlreadyReported()
            data.reported = True
            body = _core.report_body(data, out, status, retry_after_s, error, latency_ms)
            rep = Report(body, data.id)
            self._state.learn(data.id, out, retry_after_s, time.monotonic())
            self._state.enqueue(rep)
            background = out in (Outcome.SUCCESS, Outcome.UNKNOWN) and not self._closing
            if background:
                self._start_reporter()
                if len(self._state.outbox) >= self._settings.batch_size:
                    self._wake.notify()
        if background:
            return
        self._flush()
        if rep.error is not None:
            raise rep.error

    def renew(self, lease: Lease, extend_s: Optional[float] = None) -> None:
        """Moves an open lease's deadline (``POST /api/token/renew``, DESIGN §9), for long
        uploads and streams: ``extend_s`` seconds from now (at most the manager's
        ``max_lease_s``, 1 h by default), the pool's lease TTL when not given.
        ``lease.expires_at`` is updated. A cached token has no lease: nothing to do. Raises
        :class:`Rejected` (``unknown_lease`` once it was reported or expired; ``invalid`` for
        a bad ``extend_s``) and :class:`ManagerUnreachable`."""
        self._check_open()
        if lease.cached or lease.lease is None:
            return
        body = renew_body(lease, extend_s)
        try:
            r = self._http.post("/api/token/renew", json=body)
        except httpx.HTTPError as e:
            raise ManagerUnreachable(cause_of(e)) from None
        renew_answer(lease, r)

    def _report_quietly(self, lease: Lease, v: Classified, latency_ms: Optional[float]) -> None:
        try:
            self.report(lease, v.outcome, v.status, v.retry_after_s, v.error, latency_ms)
        except TokenlbError as e:
            log.warning("tokenlb: report for token %s failed: %s", lease.id, e)

    # -- lease() and call() ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """``with client.lease() as lease:`` — reported as a success on a clean exit, and on
        an exception (unless reported inside) as what :func:`classify_exception` makes of
        it, ``transient`` when it says nothing; ``unknown`` on KeyboardInterrupt and the like."""
        lease = self.get()
        try:
            yield lease
        except Exception as exc:
            if not lease.reported:
                self._report_quietly(lease, verdict_of(exc, None, Outcome.TRANSIENT, lease.token), ms_since(lease))
            raise
        except BaseException:
            if not lease.reported:
                self._report_quietly(lease, release_verdict(), None)
            raise
        else:
            if not lease.reported:
                self._report_quietly(lease, Classified(Outcome.SUCCESS), ms_since(lease))

    def call(
        self,
        fn: Callable[[Lease], T],
        attempts: int = 3,
        *,
        classify: Optional[Callable[[BaseException], Optional[Classified]]] = None,
    ) -> T:
        """Runs ``fn(lease)`` with a leased token and reports the outcome; when ``fn`` raises
        a failure of the token (auth, rate_limited, quota_exhausted, transient), tries again on
        another token, ``attempts`` times in all.

        ``fn`` signals a failure by raising: :class:`UpstreamError` / :class:`WopanError`
        (see :func:`raise_for_wopan`), ``httpx.HTTPStatusError`` (``raise_for_status()``),
        timeouts and connection errors are classified; ``classify`` may classify others
        (return ``None`` for no opinion). An exception that says nothing about the token, or
        the request's own fault (``client_error``), is reported and raised at once. When every
        attempt failed, or no other token could be leased after a failure,
        :class:`RetriesExhausted` is raised with the last exception as its cause."""
        if attempts < 1:
            raise ConfigError("attempts must be at least 1")
        tried: Set[str] = set()
        last_exc: Optional[BaseException] = None
        last_outcome: Optional[Outcome] = None
        for attempt in range(1, attempts + 1):
            try:
                lease = self._lease_untried(tried, attempts)
            except TokenlbError as e:
                if attempt == 1:
                    raise
                raise RetriesExhausted(attempt - 1, last_outcome, last_exc, e) from last_exc
            tried.add(lease.id)
            try:
                value = fn(lease)
            except Exception as exc:
                v = verdict_of(exc, classify, Outcome.UNKNOWN, lease.token)
                self._report_quietly(lease, v, ms_since(lease))
                if not v.outcome.is_token_failure:
                    raise
                log.warning(
                    "tokenlb: attempt %d with token %s failed (%s); trying another token",
                    attempt, lease.id, v.outcome.value,
                )
                last_exc, last_outcome = exc, v.outcome
                continue
            except BaseException:
                self._report_quietly(lease, release_verdict(), None)
                raise
            self._report_quietly(lease, Classified(Outcome.SUCCESS), ms_since(lease))
            return value
        raise RetriesExhausted(attempts, last_outcome, last_exc) from last_exc

    def _lease_untried(self, tried: Set[str], attempts: int) -> Lease:
        """A lease on a token this call has not tried; repeats are released (bounded)."""
        for _ in range(max(2, 2 * attempts)):
            lease = self.get()
            if lease.id not in tried:
                return lease
            if not lease.cached:
                self._report_quietly(lease, release_verdict(), None)
        raise NoTokenAvailable(
            "no_untried_token", "every token handed out was already tried in this call", None, None
        )

    # -- stats, status, flush, close ------------------------------------------------------------
    def stats(self, pool: Optional[str] = None) -> Dict[str, Any]:
        """The manager's ``GET /api/token/stats`` answer (DESIGN §3) as a dict: totals and one
        row per token (masked). ``pool`` narrows it to one pool."""
        self._check_open()
        params = {"pool": pool} if pool is not None else {}
        try:
            r = self._http.get("/api/token/stats", params=params)
        except httpx.HTTPError as e:
            raise ManagerUnreachable(cause_of(e)) from None
        return stats_answer(r)

    def status(self) -> ClientStatus:
        """The client's own view: manager reachable, cached tokens, reports waiting."""
        with self._lock:
            return status_of(self._state)

    def flush(self) -> None:
        """Sends the queued reports now (the background does it by itself otherwise)."""
        with self._lock:
            self._state.last_probe = None
        self._flush()

    def close(self) -> None:
        """Stops the background reporter, delivers what is queued (one try, even while the
        manager looked unreachable) and closes the HTTP connections. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=self._settings.timeout * 3 + 1.0)
        try:
            self.flush()
        finally:
            with self._lock:
                left = len(self._state.outbox)
            if left:
                log.warning("tokenlb: closing with %d reports not delivered (manager unreachable)", left)
            self._http.close()

    def _check_open(self) -> None:
        if self._closing:
            raise TokenlbError("closed", "the client is closed")

    # -- delivery -----------------------------------------------------------------------------
    def _start_reporter(self) -> None:
        """Under the lock: the background thread, started on first use. It holds only a weak
        reference to the client, so a client dropped without ``close()`` is collected and its
        thread ends (its queued reports are then lost, as in the Rust client)."""
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=_reporter,
                args=(weakref.ref(self), self._wake, self._settings.flush_interval),
                name="tokenlb-reporter",
                daemon=True,
            )
            self._thread.start()
            weakref.finalize(self, _stop, self._wake)

    def _background_flush(self) -> None:
        with self._lock:
            if self._closing or not self._state.outbox:
                return
        self._flush()

    def _flush(self) -> None:
        """Delivers the outbox in order, a batch at a time (bounded rounds), until it is
        empty or the manager is unreachable."""
        with self._send_lock:
            for _ in range(self._state.max_rounds()):
                with self._lock:
                    batch = self._state.take(time.monotonic())
                if not batch or not self._send(batch):
                    return

    def _send(self, batch: List[Report]) -> bool:
        """Sends one batch; False when the manager was unreachable (the batch waits again)."""
        with self._lock:
            use_batch = len(batch) > 1 and self._state.batch_supported is not False
        if use_batch:
            try:
                r = self._http.post("/api/token/report", json={"reports": [x.body for x in batch]})
            except httpx.HTTPError as e:
                return self._unreachable(batch, cause_of(e))
            if r.status_code == 200:
                try:
                    errors = _core.batch_results(r.content, len(batch))
                except ProtocolError as pe:
                    errors = [pe] * len(batch)
                with self._lock:
                    self._state.batch_supported = True
                    self._state.batches_sent += 1
                    self._state.mark_up(time.monotonic())
                    self._state.finish(batch, list(errors))
                return True
            if not _core.batch_unsupported(r.status_code, r.content):
                return self._refused(batch, r)
            with self._lock:
                self._state.batch_supported = False
            log.info("tokenlb: the manager has no batch reports; sending them one by one")
        for i, rep in enumerate(batch):
            try:
                r = self._http.post("/api/token/report", json=rep.body)
            except httpx.HTTPError as e:
                return self._unreachable(batch[i:], cause_of(e))
            err = None
            if not 200 <= r.status_code < 300:
                err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
                if err is None:
                    return self._unreachable(batch[i:], f"manager answered {r.status_code}")
            with self._lock:
                self._state.mark_up(time.monotonic())
                self._state.finish([rep], [err])
        return True

    def _refused(self, batch: List[Report], r: httpx.Response) -> bool:
        err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
        if err is None:
            return self._unreachable(batch, f"manager answered {r.status_code}")
        with self._lock:
            self._state.mark_up(time.monotonic())
            self._state.finish(batch, [err] * len(batch))
        return True

    def _unreachable(self, batch: List[Report], cause: str) -> bool:
        with self._lock:
            self._state.mark_down(time.monotonic(), cause)
            self._state.give_back(batch)
        return False



def _reporter(ref: "weakref.ReferenceType[Client]", wake: threading.Condition, interval: float) -> None:
    """The background reporter's loop: wakes every ``interval`` or when notified, sends the
    outbox; ends with ``close()`` or when the client is gone."""
    while True:
        with wake:
            client = ref()
            if client is None or client._closing:
                return
            # A notify sent before this thread reached wait() is not remembered: look at the
            # outbox first, and wait only when it is not already due.
            due = len(client._state.outbox) >= client._settings.batch_size
            del client
            if not due:
                wake.wait(timeout=interval)
        client = ref()
        if client is None:
            return
        try:
            client._background_flush()
        except Exception:  # never let the reporter die
            log.exception("tokenlb: background report delivery failed")
        finally:
            del client


def _stop(wake: threading.Condition) -> None:
    """Wakes the reporter of a collected client so it ends."""
    with wake:
        wake.notify_all()
