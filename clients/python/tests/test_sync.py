"""The synchronous Client against the real manager and the real Wopan emulator."""

from __future__ import annotations

import logging
import threading
import time
from typing import List, Optional

import httpx
import pytest

import tokenlb
from tokenlb import Client, Outcome

from .conftest import REPORTER_KEY, TOKENS, Emulator, Manager, plain_http
from .wopan import check_user

#: Large enough that the background never sends during a test: delivery is then driven by
#: failures, flush() and close() only, so what is asserted does not depend on timing.
QUIET = 3600.0


def successes(m: Manager) -> int:
    return sum(int(r["success"]) for r in m.rows().values())


def test_get_hands_out_a_lease_and_report_counts(manager: Manager) -> None:
    with Client(manager.url) as client:
        lease = client.get()
        assert lease.token in TOKENS and lease.id.startswith("t") and lease.name in ("t0", "t1", "t2")
        assert lease.lease and lease.expires_at and lease.pool == "default" and not lease.cached
        assert lease.token not in repr(lease)
        lease.report("success", latency_ms=12)
        with pytest.raises(tokenlb.AlreadyReported):
            lease.report("success")
    assert manager.rows()[lease.name]["success"] == 1


def test_lease_context_reports_success_and_exceptions(manager: Manager, emulator: Emulator) -> None:
    names: List[str] = []
    with Client(manager.url, strategy="round_robin", flush_interval=QUIET) as client, plain_http() as http:
        with client.lease() as lease:
            check_user(http, emulator.url, lease.token)
            names.append(lease.name)
        with pytest.raises(RuntimeError):
            with client.lease() as lease:
                names.append(lease.name)
                raise RuntimeError("the service's own failure")
        with client.lease() as lease:
            names.append(lease.name)
            lease.report(Outcome.CLIENT_ERROR, status=404, error="no such folder")
    rows = manager.rows()
    assert rows[names[0]]["success"] == 1
    assert rows[names[1]]["failure"] == 1  # transient
    assert rows[names[2]]["failure"] == 0 and rows[names[2]]["success"] == 0  # client_error never counts


def test_successes_go_in_one_batch_and_close_delivers_them(manager: Manager) -> None:
    client = Client(manager.url, flush_interval=QUIET)
    for _ in range(6):
        client.get().report("success")
    assert client.status().queued_reports == 6
    assert successes(manager) == 0
    client.close()
    st = client.status()
    assert st.queued_reports == 0 and st.dropped_reports == 0
    assert st.batch_reports is True, "the manager refused {'reports': [...]} (DESIGN §9 batch form)"
    assert st.batches_sent == 1
    assert successes(manager) == 6


def test_batch_size_wakes_the_background(manager: Manager) -> None:
    with Client(manager.url, batch_size=4, flush_interval=QUIET) as client:
        for _ in range(3):
            client.get().report("success")
        assert client.status().queued_reports == 3
        client.get().report("success")
        # The fourth report woke the reporter (the clock never would: flush_interval is an
        # hour). Bounded wait for it, no timing asserted.
        deadline = time.monotonic() + 30
        while client.status().queued_reports and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.status().queued_reports == 0
        assert successes(manager) == 4


def test_a_wake_up_sent_before_the_reporter_waits_is_not_lost(manager: Manager) -> None:
    """With batch_size=1 the first report starts the reporter thread and notifies it at once,
    before the thread can be waiting; it must still send (it checks the outbox first)."""
    with Client(manager.url, batch_size=1, flush_interval=QUIET) as client:
        client.get().report("success")
        deadline = time.monotonic() + 30
        while client.status().queued_reports and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.status().queued_reports == 0
        assert successes(manager) == 1


def test_batch_answers_in_order(manager: Manager) -> None:
    """The manager's batch contract (DESIGN §9) as this client relies on it."""
    with Client(manager.url) as client:
        a, b = client.get(), client.get()
        body = {"reports": [
            {"lease": a.lease, "outcome": "success"},
            {"lease": "0.999999", "outcome": "success"},
            {"lease": b.lease, "outcome": "transient", "error": "x"},
        ]}
        with plain_http() as http:
            r = http.post(manager.url + "/api/token/report", json=body)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert results[0] == {"ok": True} or results[0].get("ok") is True
        assert "error" in results[1] and results[1]["error"]["code"]
        assert results[2].get("ok") is True


def test_a_failure_goes_at_once_after_the_successes_before_it(manager: Manager) -> None:
    with Client(manager.url, strategy="round_robin", flush_interval=QUIET) as client:
        first = client.get()
        first.report("success")
        second = client.get()
        assert second.id != first.id
        second.report("transient", status=502, error=f"bad gateway for token {second.token}")
        assert client.status().queued_reports == 0
        rows = manager.rows()
        assert rows[first.name]["success"] == 1 and rows[second.name]["failure"] == 1
        last_error = str(rows[second.name]["last_error"])
        assert "bad gateway" in last_error and second.token not in last_error


def test_call_retries_auth_failures_on_another_token(manager: Manager, emulator: Emulator) -> None:
    emulator.faults(t0="expired", t1="expired")
    tries: List[str] = []

    def op(lease: tokenlb.Lease) -> str:
        tries.append(lease.name)
        with plain_http() as http:
            check_user(http, emulator.url, lease.token)
        return lease.name

    with Client(manager.url, strategy="round_robin", flush_interval=QUIET) as client:
        answers = [client.call(op) for _ in range(3)]
    assert answers == ["t2", "t2", "t2"]
    assert sorted(tries) == ["t0", "t1", "t2", "t2", "t2"]  # each bad token cost one attempt
    rows = manager.rows()
    assert rows["t0"]["state"] == "invalid" and rows["t1"]["state"] == "invalid"
    assert rows["t2"]["state"] == "active" and rows["t2"]["success"] == 3


@pytest.mark.parametrize("fault,reason", [("rate_limited", "rate"), ("quota", "quota")])
def test_call_retries_rate_limited_and_quota_tokens(
    manager: Manager, emulator: Emulator, fault: str, reason: str
) -> None:
    emulator.control(retry_after_s=120)
    emulator.faults(t0=fault, t1=fault)
    with Client(manager.url, strategy="round_robin", flush_interval=QUIET) as client, plain_http() as http:
        answers = [client.call(lambda l: check_user(http, emulator.url, l.token) and l.name) for _ in range(3)]
    assert answers == ["t2", "t2", "t2"]
    rows = manager.rows()
    for name in ("t0", "t1"):
        assert rows[name]["state"] == "cooling", rows[name]
        assert rows[name]["failure"] == 1


def test_call_gives_up_with_the_last_error_and_the_manager_code(manager: Manager, emulator: Emulator) -> None:
    emulator.faults(t0="expired", t1="expired", t2="expired")
    with Client(manager.url, flush_interval=QUIET) as client, plain_http() as http:
        with pytest.raises(tokenlb.RetriesExhausted) as e:
            client.call(lambda l: check_user(http, emulator.url, l.token), attempts=3)
        assert e.value.attempts == 3 and e.value.outcome is Outcome.AUTH
        assert isinstance(e.value.__cause__, tokenlb.WopanError) and e.value.__cause__.rsp_code == "9999"
        with pytest.raises(tokenlb.NoTokenAvailable) as none:
            client.get()
        assert none.value.code == "no_token_available" and none.value.status == 503
        assert none.value.retry_after is not None
        with pytest.raises(tokenlb.NoTokenAvailable):
            client.call(lambda l: l.name)
    with Client(manager.url, wait_ms=50) as waiting:  # the manager waits, then says no
        with pytest.raises(tokenlb.NoTokenAvailable):
            waiting.get()


def test_call_does_not_retry_the_requests_own_fault(manager: Manager) -> None:
    calls: List[str] = []

    def op(lease: tokenlb.Lease) -> None:
        calls.append(lease.name)
        raise tokenlb.UpstreamError("client_error", "no such folder", status=404)

    def bug(lease: tokenlb.Lease) -> None:
        calls.append(lease.name)
        raise KeyError("a bug in the service")

    with Client(manager.url, flush_interval=QUIET) as client:
        with pytest.raises(tokenlb.UpstreamError):
            client.call(op)
        with pytest.raises(KeyError):
            client.call(bug)
    assert len(calls) == 2
    assert all(r["failure"] == 0 for r in manager.rows().values())


def test_call_classifies_httpx_status_errors_and_custom_classifiers(manager: Manager) -> None:
    def upstream(status: int) -> None:
        req = httpx.Request("GET", "http://upstream.invalid/")
        httpx.Response(status, request=req).raise_for_status()

    seen: List[str] = []

    def flaky(lease: tokenlb.Lease) -> str:
        seen.append(lease.name)
        if len(seen) == 1:
            upstream(503)
        return "ok"

    def custom(exc: BaseException) -> tokenlb.Classified:
        return tokenlb.Classified(Outcome.RATE_LIMITED, retry_after_s=300)

    with Client(manager.url, flush_interval=QUIET) as client:
        assert client.call(flaky) == "ok" and len(seen) == 2 and seen[0] != seen[1]
        count = {"n": 0}

        def once(lease: tokenlb.Lease) -> str:
            count["n"] += 1
            if count["n"] == 1:
                raise ValueError("the upstream said slow down, in its own words")
            return lease.name

        client.call(once, classify=custom)
    cooling = [r for r in manager.rows().values() if r["state"] == "cooling"]
    assert len(cooling) == 1


def test_stats_and_errors_carry_the_manager_code(manager: Manager) -> None:
    with Client(manager.url) as client:
        stats = client.stats()
        assert stats["total_tokens"] == 3 and len(stats["tokens"]) == 3
        assert all(t["token"] not in TOKENS for t in stats["tokens"])
        assert client.stats(pool="default")["total_tokens"] == 3
    with Client(manager.url, pool="no-such-pool") as other:
        with pytest.raises(tokenlb.Rejected) as e:
            other.get()
        assert (e.value.code, e.value.status) == ("unknown_pool", 404)


def test_client_keys(keyed_manager: Manager) -> None:
    with Client(keyed_manager.url, key="wrong-key-0123456789abcdef") as bad:
        with pytest.raises(tokenlb.Unauthorized) as e:
            bad.get()
        assert e.value.status in (401, 403) and e.value.code
    with Client(keyed_manager.url, key="svc-key-0123456789abcdef") as good:
        good.get().report("success")
        assert good.stats()["total_tokens"] == 1
    assert keyed_manager.rows()["t0"]["success"] == 1


def test_manager_down_and_back(
    reporter_manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    manager = reporter_manager
    caplog.set_level(logging.INFO, logger="tokenlb")
    client = Client(
        manager.url, REPORTER_KEY, strategy="round_robin", probe_interval=0, flush_interval=QUIET
    )
    leased = {client.get().id for _ in range(3)}
    assert len(leased) == 3  # every token is now in the cache
    manager.stop()

    lease = client.get()
    assert lease.cached and lease.lease is None and lease.id in leased
    assert not client.status().manager_reachable
    lease.report("success")
    with client.lease() as second:
        assert second.cached
    bad = client.get()
    bad.report("auth", error="rejected upstream")  # waits for the manager: no exception
    for _ in range(4):  # the auth failure took its token out of the cache
        other = client.get()
        assert other.id != bad.id
        other.report("unknown")
    assert client.status().queued_reports == 7
    down = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1 and "using 3 cached tokens for up to 300 s" in down[0]

    manager.start()
    client.flush()  # what waited is delivered (by token id: these leases are gone)
    assert client.status().queued_reports == 0 and client.status().manager_reachable
    back = client.get()
    assert not back.cached and back.lease and back.id != bad.id
    back.report("success")
    client.close()
    assert client.status().queued_reports == 0 and client.status().manager_reachable
    rows = manager.rows()
    assert rows[bad.name]["state"] == "invalid"
    assert sum(int(r["success"]) for r in rows.values()) >= 3
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert not any(t in r.getMessage() for r in caplog.records for t in TOKENS)


def test_no_grace_period_means_unreachable_at_once(manager: Manager) -> None:
    with Client(manager.url, grace_period=0, probe_interval=0) as client:
        client.get().report("success")
        client.flush()
        manager.stop()
        with pytest.raises(tokenlb.ManagerUnreachable) as e:
            client.get()
        assert e.value.code == "unreachable" and "grace period is off" in e.value.message
        with pytest.raises(tokenlb.ManagerUnreachable):
            client.stats()
    with Client("http://127.0.0.1:9") as never:
        with pytest.raises(tokenlb.ManagerUnreachable) as e:
            never.get()
        assert "no cached token" in e.value.message


def test_threads_share_one_client(manager: Manager) -> None:
    errors: List[BaseException] = []
    with Client(manager.url, batch_size=10, flush_interval=QUIET) as client:
        def work() -> None:
            try:
                for _ in range(10):
                    with client.lease():
                        pass
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    assert not errors
    assert successes(manager) == 40



def test_renew_moves_the_deadline(manager: Manager) -> None:
    from datetime import datetime

    def when(text: Optional[str]) -> datetime:
        assert text is not None
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    with Client(manager.url) as client:
        lease = client.get()
        first = when(lease.expires_at)
        lease.renew(extend_s=1800)  # the pool's lease TTL is 60 s
        assert when(lease.expires_at) > first
        with pytest.raises(tokenlb.Rejected) as e:
            lease.renew(extend_s=10 * 3600)  # more than max_lease_s
        assert e.value.status == 400
        lease.report("success")
        client.flush()
        with pytest.raises(tokenlb.Rejected) as e:
            lease.renew()
        assert (e.value.code, e.value.status) == ("unknown_lease", 404)
