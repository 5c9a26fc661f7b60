"""The asyncio AsyncClient against the real manager and the real Wopan emulator."""

from __future__ import annotations

import asyncio
from typing import List

import httpx
import pytest

import tokenlb
from tokenlb import AsyncClient, Outcome

from .conftest import REPORTER_KEY, TOKENS, Emulator, Manager
from .wopan import query_user_async

pytestmark = pytest.mark.anyio

#: The background never sends by the clock during a test (see test_sync.QUIET).
QUIET = 3600.0


def successes(m: Manager) -> int:
    return sum(int(r["success"]) for r in m.rows().values())


async def check_user(http: httpx.AsyncClient, base: str, lease: tokenlb.AsyncLease) -> str:
    tokenlb.raise_for_wopan(await query_user_async(http, base, lease.token))
    return lease.name


async def test_get_report_and_batch_on_close(manager: Manager) -> None:
    client = AsyncClient(manager.url, flush_interval=QUIET)
    lease = await client.get()
    assert lease.token in TOKENS and lease.lease and not lease.cached
    assert lease.token not in repr(lease)
    await lease.report("success", latency_ms=3)
    with pytest.raises(tokenlb.AlreadyReported):
        await lease.report("success")
    for _ in range(4):
        await (await client.get()).report(Outcome.SUCCESS)
    assert client.status().queued_reports == 5 and successes(manager) == 0
    await client.close()
    st = client.status()
    assert st.queued_reports == 0
    assert st.batch_reports is True, "the manager refused {'reports': [...]} (DESIGN §9 batch form)"
    assert st.batches_sent == 1
    assert successes(manager) == 5


async def test_lease_context_and_failures_at_once(manager: Manager, emulator: Emulator) -> None:
    names: List[str] = []
    async with AsyncClient(manager.url, strategy="round_robin", flush_interval=QUIET) as client:
        async with httpx.AsyncClient(trust_env=False) as http:
            async with client.lease() as lease:
                names.append(await check_user(http, emulator.url, lease))
        with pytest.raises(RuntimeError):
            async with client.lease() as lease:
                names.append(lease.name)
                raise RuntimeError("boom")
        # The failure went at once, with the success queued before it.
        assert client.status().queued_reports == 0
        rows = manager.rows()
        assert rows[names[0]]["success"] == 1 and rows[names[1]]["failure"] == 1


async def test_cancelled_lease_is_released_not_counted(manager: Manager) -> None:
    async with AsyncClient(manager.url, flush_interval=QUIET) as client:
        started = asyncio.Event()

        async def hold() -> None:
            async with client.lease():
                started.set()
                await asyncio.Event().wait()  # until cancelled

        task = asyncio.ensure_future(hold())
        await asyncio.wait_for(started.wait(), timeout=30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.status().queued_reports == 1
    rows = manager.rows().values()
    assert sum(int(r["success"]) + int(r["failure"]) for r in rows) == 0
    assert sum(int(r["in_flight"]) for r in rows) == 0


async def test_call_retries_auth_and_rate_limited_tokens(manager: Manager, emulator: Emulator) -> None:
    emulator.control(retry_after_s=120)
    emulator.faults(t0="expired", t1="rate_limited")
    tries: List[str] = []
    async with AsyncClient(manager.url, strategy="round_robin", flush_interval=QUIET) as client:
        async with httpx.AsyncClient(trust_env=False) as http:

            async def op(lease: tokenlb.AsyncLease) -> str:
                tries.append(lease.name)
                return await check_user(http, emulator.url, lease)

            answers = [await client.call(op) for _ in range(3)]
    assert answers == ["t2", "t2", "t2"]
    assert sorted(tries) == ["t0", "t1", "t2", "t2", "t2"]
    rows = manager.rows()
    assert rows["t0"]["state"] == "invalid" and rows["t1"]["state"] == "cooling"


async def test_call_gives_up_and_raises_at_once_on_client_errors(manager: Manager, emulator: Emulator) -> None:
    emulator.faults(t0="expired", t1="expired", t2="expired")
    async with AsyncClient(manager.url, flush_interval=QUIET) as client:
        async with httpx.AsyncClient(trust_env=False) as http:
            with pytest.raises(tokenlb.RetriesExhausted) as e:
                await client.call(lambda lease: check_user(http, emulator.url, lease), attempts=2)
            assert e.value.attempts == 2 and e.value.outcome is Outcome.AUTH

            async def mine(lease: tokenlb.AsyncLease) -> None:
                raise tokenlb.UpstreamError("client_error", "bad request")

            with pytest.raises(tokenlb.UpstreamError):
                await client.call(mine)
            # The last token fails too; then no token is left to try.
            with pytest.raises(tokenlb.RetriesExhausted) as e:
                await client.call(lambda lease: check_user(http, emulator.url, lease))
            assert e.value.attempts == 1 and e.value.no_token is not None
            assert e.value.no_token.code == "no_token_available"
    rows = manager.rows()
    assert all(r["state"] == "invalid" for r in rows.values())


async def test_concurrent_calls_share_one_client(manager: Manager) -> None:
    async with AsyncClient(manager.url, batch_size=8, flush_interval=QUIET) as client:

        async def op(lease: tokenlb.AsyncLease) -> str:
            await asyncio.sleep(0)
            return lease.id

        ids = await asyncio.gather(*(client.call(op) for _ in range(24)))
        assert len(ids) == 24
        await client.flush()
        assert client.status().queued_reports == 0
    assert successes(manager) == 24


async def test_manager_down_and_back(reporter_manager: Manager) -> None:
    manager = reporter_manager
    client = AsyncClient(
        manager.url, REPORTER_KEY, strategy="round_robin", probe_interval=0, flush_interval=QUIET
    )
    leased = {(await client.get()).id for _ in range(3)}
    assert len(leased) == 3
    manager.stop()
    lease = await client.get()
    assert lease.cached and lease.id in leased and not client.status().manager_reachable
    await lease.report("success")
    async with client.lease() as second:
        assert second.cached
    bad = await client.get()
    await bad.report("rate_limited", retry_after_s=120)
    nxt = await client.get()
    assert nxt.id != bad.id  # skipped while its retry-after runs
    await nxt.report("success")
    assert client.status().queued_reports == 4

    manager.start()
    await client.flush()
    assert client.status().queued_reports == 0 and client.status().manager_reachable
    back = await client.get()
    assert not back.cached and back.id != bad.id
    await back.report("success")
    await client.close()
    assert client.status().queued_reports == 0
    rows = manager.rows()
    assert rows[bad.name]["state"] == "cooling"
    assert successes(manager) >= 4


async def test_errors_carry_the_manager_code(manager: Manager, keyed_manager: Manager) -> None:
    async with AsyncClient(manager.url, pool="nope") as client:
        with pytest.raises(tokenlb.Rejected) as e:
            await client.get()
        assert e.value.code == "unknown_pool"
        assert (await client.stats())["total_tokens"] == 3
    async with AsyncClient(keyed_manager.url) as anonymous:
        with pytest.raises(tokenlb.Unauthorized):
            await anonymous.get()
    async with AsyncClient(keyed_manager.url, key="svc-key-0123456789abcdef") as keyed:
        async with keyed.lease():
            pass
    assert keyed_manager.rows()["t0"]["success"] == 1


async def test_a_dropped_client_is_collected_and_its_reporter_ends() -> None:
    import gc

    from tokenlb._core import LeaseData

    client = AsyncClient("http://127.0.0.1:9", flush_interval=QUIET)
    data = LeaseData("secret-value-of-a", "a", "a", "default", "0.1", None, False, 0.0)
    handed_out = tokenlb.AsyncLease(client, data)
    await handed_out.report("success")  # queued: starts the background task
    task = client._task
    assert task is not None and not task.done()
    await client._http.aclose()
    del client, handed_out
    gc.collect()
    await asyncio.wait_for(task, timeout=30)
    assert task.done()


async def test_renew(manager: Manager) -> None:
    async with AsyncClient(manager.url) as client:
        lease = await client.get()
        before = lease.expires_at
        await lease.renew(extend_s=1800)
        assert lease.expires_at is not None and lease.expires_at != before
        async with client.lease() as other:
            await other.renew()  # the pool's lease TTL from now
