"""The asyncio client: :class:`AsyncClient` and its :class:`AsyncLease`, with the same names
and rules as the synchronous :class:`Client`.

The background reporter is one task, started on the first queued success, that sends the
outbox as a batch every ``flush_interval`` seconds or as soon as ``batch_size`` reports wait.
A failure is delivered before ``report`` returns, together with whatever waits before it.
Sends are serialised by one ``asyncio.Lock``; the shared state is only touched between
awaits, so it needs no lock. ``await client.close()`` delivers what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Set, TypeVar

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


class AsyncLease(LeaseView):
    """A leased token of an :class:`AsyncClient` (fields as :class:`Lease`);
    ``await lease.report(...)``."""

    def __init__(self, client: "AsyncClient", data: LeaseData) -> None:
        self._client = client
        self._data = data

    async def report(
        self,
        outcome: OutcomeLike,
        status: Optional[int] = None,
        retry_after_s: Optional[float] = None,
        error: Optional[str] = None,
        latency_ms: Optional[float] = None,
    ) -> None:
        """Reports how the token did (see :meth:`AsyncClient.report`)."""
        await self._client.report(self, outcome, status, retry_after_s, error, latency_ms)

    async def renew(self, extend_s: Optional[float] = None) -> None:
        """Moves the lease's deadline (see :meth:`AsyncClient.renew`)."""
        await self._client.renew(self, extend_s)


class AsyncClient:
    """The asyncio twin of :class:`Client`: same arguments, same methods, awaited."""

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
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self._settings = Settings.check(
            url, key, pool, strategy, timeout, wait_ms, grace_period, probe_interval,
            max_cached_tokens, max_queued_reports, failed_token_cooldown, batch_size,
            flush_interval,
        )
        s = self._settings
        self._state = State(s)
        self._wake: Optional[asyncio.Event] = None
        self._send_lock: Optional[asyncio.Lock] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._closing = False
        self._http = httpx.AsyncClient(
            base_url=s.url,
            headers=s.headers(),
            timeout=s.timeout,
            trust_env=not s.is_loopback(),
            transport=transport,
        )

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        key = "…" if self._settings.key else None
        return f"AsyncClient(url={self._settings.url!r}, pool={self._settings.pool!r}, key={key!r})"

    # -- get ----------------------------------------------------------------------------------
    async def get(self) -> AsyncLease:
        """Leases a token; see :meth:`Client.get`."""
        self._check_open()
        s = self._settings
        now = time.monotonic()
        if not self._state.should_probe(now):
            return self._cached("not answering", now)
        try:
            r = await self._http.get("/api/token/get", params=s.get_params(), timeout=s.get_timeout())
        except httpx.HTTPError as e:
            return self._down(cause_of(e), now)
        if r.status_code == 200:
            data = _core.parse_lease(r.content, s.pool, time.monotonic())
            self._answered(now)
            self._state.remember(data, now)
            return AsyncLease(self, data)
        err = _core.answer_error(r.status_code, r.content, r.headers, on_get=True)
        if err is None:
            return self._down(f"manager answered {r.status_code}", now)
        self._answered(now)
        raise err

    def _down(self, cause: str, now: float) -> AsyncLease:
        self._state.mark_down(now, cause)
        return self._cached(cause, now)

    def _cached(self, cause: str, now: float) -> AsyncLease:
        picked = self._state.pick(now)
        if isinstance(picked, str):
            raise ManagerUnreachable(f"{cause}; {picked}")
        return AsyncLease(self, picked)

    def _answered(self, now: float) -> None:
        if self._state.mark_up(now) and self._state.outbox:
            self._start_reporter().set()

    # -- report -------------------------------------------------------------------------------
    async def report(
        self,
        lease: AsyncLease,
        outcome: OutcomeLike,
        status: Optional[int] = None,
        retry_after_s: Optional[float] = None,
        error: Optional[str] = None,
        latency_ms: Optional[float] = None,
    ) -> None:
        """Reports a lease's outcome; see :meth:`Client.report`."""
        out = Outcome.parse(outcome)
        data = lease._data
        if self._http.is_closed:
            raise TokenlbError("closed", "the client is closed")
        if data.reported:
            raise AlreadyReported()
        data.reported = True
        body = _core.report_body(data, out, status, retry_after_s, error, latency_ms)
        rep = Report(body, data.id)
        self._state.learn(data.id, out, retry_after_s, time.monotonic())
        self._state.enqueue(rep)
        if out in (Outcome.SUCCESS, Outcome.UNKNOWN) and not self._closing:
            wake = self._start_reporter()
            if len(self._state.outbox) >= self._settings.batch_size:
                wake.set()
            return
        await self._flush()
        if rep.error is not None:
            raise rep.error

    async def renew(self, lease: AsyncLease, extend_s: Optional[float] = None) -> None:
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
            r = await self._http.post("/api/token/renew", json=body)
        except httpx.HTTPError as e:
            raise ManagerUnreachable(cause_of(e)) from None
        renew_answer(lease, r)

    async def _report_quietly(self, lease: AsyncLease, v: Classified, latency_ms: Optional[float]) -> None:
        try:
            await self.report(lease, v.outcome, v.status, v.retry_after_s, v.error, latency_ms)
        except TokenlbError as e:
            log.warning("tokenlb: report for token %s failed: %s", lease.id, e)

    # -- lease() and call() ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[AsyncLease]:
        """``async with client.lease() as lease:``; see :meth:`Client.lease`."""
        lease = await self.get()
        try:
            yield lease
        except Exception as exc:
            if not lease.reported:
                v = verdict_of(exc, None, Outcome.TRANSIENT, lease.token)
                await self._report_quietly(lease, v, ms_since(lease))
            raise
        except BaseException:
            if not lease.reported:
                await self._report_quietly(lease, release_verdict(), None)
            raise
        else:
            if not lease.reported:
                await self._report_quietly(lease, Classified(Outcome.SUCCESS), ms_since(lease))

    async def call(
        self,
        fn: Callable[[AsyncLease], Awaitable[T]],
        attempts: int = 3,
        *,
        classify: Optional[Callable[[BaseException], Optional[Classified]]] = None,
    ) -> T:
        """``await client.call(fn)`` with ``fn`` an async function of the lease; see
        :meth:`Client.call`."""
        if attempts < 1:
            raise ConfigError("attempts must be at least 1")
        tried: Set[str] = set()
        last_exc: Optional[BaseException] = None
        last_outcome: Optional[Outcome] = None
        for attempt in range(1, attempts + 1):
            try:
                lease = await self._lease_untried(tried, attempts)
            except TokenlbError as e:
                if attempt == 1:
                    raise
                raise RetriesExhausted(attempt - 1, last_outcome, last_exc, e) from last_exc
            tried.add(lease.id)
            try:
                value = await fn(lease)
            except Exception as exc:
                v = verdict_of(exc, classify, Outcome.UNKNOWN, lease.token)
                await self._report_quietly(lease, v, ms_since(lease))
                if not v.outcome.is_token_failure:
                    raise
                log.warning(
                    "tokenlb: attempt %d with token %s failed (%s); trying another token",
                    attempt, lease.id, v.outcome.value,
                )
                last_exc, last_outcome = exc, v.outcome
                continue
            except BaseException:
                await self._report_quietly(lease, release_verdict(), None)
                raise
            await self._report_quietly(lease, Classified(Outcome.SUCCESS), ms_since(lease))
            return value
        raise RetriesExhausted(attempts, last_outcome, last_exc) from last_exc

    async def _lease_untried(self, tried: Set[str], attempts: int) -> AsyncLease:
        for _ in range(max(2, 2 * attempts)):
            lease = await self.get()
            if lease.id not in tried:
                return lease
            if not lease.cached:
                await self._report_quietly(lease, release_verdict(), None)
        raise NoTokenAvailable(
            "no_untried_token", "every token handed out was already tried in this call", None, None
        )

    # -- stats, status, flush, close ------------------------------------------------------------
    async def stats(self, pool: Optional[str] = None) -> Dict[str, Any]:
        """The manager's ``GET /api/token/stats`` answer as a dict; see :meth:`Client.stats`."""
        self._check_open()
        params = {"pool": pool} if pool is not None else {}
        try:
            r = await self._http.get("/api/token/stats", params=params)
        except httpx.HTTPError as e:
            raise ManagerUnreachable(cause_of(e)) from None
        return stats_answer(r)

    def status(self) -> ClientStatus:
        """The client's own view: manager reachable, cached tokens, reports waiting."""
        return status_of(self._state)

    async def flush(self) -> None:
        """Sends the queued reports now."""
        self._state.last_probe = None
        await self._flush()

    async def close(self) -> None:
        """Stops the background reporter, delivers what is queued and closes the HTTP
        connections. Idempotent."""
        if self._closing:
            return
        self._closing = True
        task = self._task
        if task is not None and self._wake is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(
                    asyncio.shield(task),
                    timeout=self._settings.timeout * 3 + 1.0,
                )
            except asyncio.TimeoutError:
                task.cancel()
        try:
            await self.flush()
        finally:
            left = len(self._state.outbox)
            if left:
                log.warning("tokenlb: closing with %d reports not delivered (manager unreachable)", left)
            await self._http.aclose()

    def _check_open(self) -> None:
        if self._closing:
            raise TokenlbError("closed", "the client is closed")

    # -- delivery -----------------------------------------------------------------------------
    def _start_reporter(self) -> asyncio.Event:
        """The background task, started on first use. It holds only a weak reference to the
        client, so a client dropped without ``close()`` is collected and its task ends."""
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None and not self._closing:
            interval = self._settings.flush_interval
            self._task = asyncio.get_running_loop().create_task(
                _reporter(weakref.ref(self), self._wake, interval)
            )
            weakref.finalize(self, self._wake.set)
        return self._wake

    async def _flush(self) -> None:
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            for _ in range(self._state.max_rounds()):
                batch = self._state.take(time.monotonic())
                if not batch or not await self._send(batch):
                    return

    async def _send(self, batch: List[Report]) -> bool:
        st = self._state
        if len(batch) > 1 and st.batch_supported is not False:
            try:
                r = await self._http.post("/api/token/report", json={"reports": [x.body for x in batch]})
            except httpx.HTTPError as e:
                return self._unreachable(batch, cause_of(e))
            if r.status_code == 200:
                try:
                    errors = _core.batch_results(r.content, len(batch))
                except ProtocolError as pe:
                    errors = [pe] * len(batch)
                st.batch_supported = True
                st.batches_sent += 1
                st.mark_up(time.monotonic())
                st.finish(batch, list(errors))
                return True
            if not _core.batch_unsupported(r.status_code, r.content):
                return self._refused(batch, r)
            st.batch_supported = False
            log.info("tokenlb: the manager has no batch reports; sending them one by one")
        for i, rep in enumerate(batch):
            try:
                r = await self._http.post("/api/token/report", json=rep.body)
            except httpx.HTTPError as e:
                return self._unreachable(batch[i:], cause_of(e))
            err = None
            if not 200 <= r.status_code < 300:
                err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
                if err is None:
                    return self._unreachable(batch[i:], f"manager answered {r.status_code}")
            st.mark_up(time.monotonic())
            st.finish([rep], [err])
        return True

    def _refused(self, batch: List[Report], r: httpx.Response) -> bool:
        err = _core.answer_error(r.status_code, r.content, r.headers, on_get=False)
        if err is None:
            return self._unreachable(batch, f"manager answered {r.status_code}")
        self._state.mark_up(time.monotonic())
        self._state.finish(batch, [err] * len(batch))
        return True

    def _unreachable(self, batch: List[Report], cause: str) -> bool:
        self._state.mark_down(time.monotonic(), cause)
        self._state.give_back(batch)
        return False


async def _reporter(ref: "weakref.ReferenceType[AsyncClient]", wake: asyncio.Event, interval: float) -> None:
    """The background reporter's loop: wakes every ``interval`` or when set, sends the
    outbox; ends with ``close()`` or when the client is gone."""
    while True:
        client = ref()
        if client is None or client._closing:
            return
        del client
        try:
            await asyncio.wait_for(wake.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
        wake.clear()
        client = ref()
        if client is None or client._closing:
            return
        try:
            if client._state.outbox:
                await client._flush()
        except Exception:  # never let the reporter die
            log.exception("tokenlb: background report delivery failed")
        finally:
            del client
