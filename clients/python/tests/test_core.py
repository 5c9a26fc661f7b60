"""The I/O-free core: the grace-period cache, probing, the outbox, wire forms, answers.
Time is an argument, so nothing here sleeps."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest

import tokenlb
from tokenlb import Outcome, _core
from tokenlb._core import LeaseData, Report, Settings, State


def settings(**kw: Any) -> Settings:
    args: Dict[str, Any] = dict(
        url="http://127.0.0.1:8000/", key=None, pool="default", strategy="best", timeout=5.0,
        wait_ms=None, grace_period=60.0, probe_interval=2.0, max_cached_tokens=8,
        max_queued_reports=3, failed_token_cooldown=30.0, batch_size=100, flush_interval=1.0,
    )
    args.update(kw)
    return Settings.check(**args)


def lease(tid: str, lease_id: Optional[str] = "0.1") -> LeaseData:
    return LeaseData(f"secret-value-of-{tid}", tid, f"name-{tid}", "default", lease_id, None, False, 0.0)


def test_settings_are_checked_once() -> None:
    assert settings().url == "http://127.0.0.1:8000"
    assert settings().is_loopback() and not settings(url="https://tokens.example.com").is_loopback()
    for bad in (dict(url="ftp://x"), dict(key=" "), dict(pool=""), dict(strategy="fastest"),
                dict(timeout=0), dict(max_queued_reports=0), dict(batch_size=1001), dict(wait_ms=-1)):
        with pytest.raises(tokenlb.ConfigError):
            settings(**bad)
    with pytest.raises(tokenlb.ConfigError, match="strategy"):
        tokenlb.Client("http://127.0.0.1:1", strategy="fastest")
    assert settings(strategy=None).get_params() == {"pool": "default"}
    assert settings(key="k").headers()["Authorization"] == "Bearer k"


def test_cache_round_robin_skips_failed_and_drops_auth() -> None:
    st = State(settings())
    for t in ("a", "b", "c"):
        st.remember(lease(t), 0.0)
    st.mark_down(0.0, "test")
    picks = [st.pick(0.0) for _ in range(3)]
    assert [p.id for p in picks if isinstance(p, LeaseData)] == ["a", "b", "c"]
    first = picks[0]
    assert isinstance(first, LeaseData) and first.cached and first.lease is None
    st.learn("b", Outcome.AUTH, None, 0.0)
    st.learn("c", Outcome.TRANSIENT, None, 0.0)
    assert len(st.tokens) == 2
    assert [getattr(st.pick(1.0), "id") for _ in range(3)] == ["a", "a", "a"]
    later = {getattr(st.pick(31.0), "id") for _ in range(2)}
    assert later == {"a", "c"}
    st.learn("a", Outcome.RATE_LIMITED, 100, 31.0)
    st.learn("c", Outcome.RATE_LIMITED, 100, 31.0)
    assert st.pick(32.0) == "all 2 cached tokens failed recently"


def test_grace_period_ends_and_recovery_resets_it() -> None:
    st = State(settings(grace_period=10.0))
    st.remember(lease("a"), 0.0)
    st.mark_down(0.0, "test")
    assert isinstance(st.pick(9.0), LeaseData)
    assert "grace period of 10 s is over" in str(st.pick(10.0))
    assert st.mark_up(12.0) is True and st.mark_up(13.0) is False
    assert State(settings(grace_period=0)).pick(0.0) == "the grace period is off"
    assert "no cached token" in str(State(settings()).pick(0.0))


def test_probes_are_spaced_while_down() -> None:
    st = State(settings(probe_interval=2.0))
    assert st.should_probe(0.0)
    st.mark_down(0.0, "test")
    assert not st.should_probe(1.0) and st.should_probe(2.0)
    assert State(settings(probe_interval=0)).should_probe(0.0)


def test_capacity_evicts_least_recently_seen() -> None:
    st = State(settings(max_cached_tokens=2))
    st.remember(lease("a"), 0.0)
    st.remember(lease("b"), 1.0)
    st.remember(lease("a"), 2.0)
    st.remember(lease("c"), 3.0)
    assert sorted(t.lease.id for t in st.tokens) == ["a", "c"]


def test_outbox_is_bounded_ordered_and_held_while_down() -> None:
    st = State(settings(max_queued_reports=3, probe_interval=5.0))
    reps = [Report({"n": i}, "a") for i in range(4)]
    for r in reps:
        st.enqueue(r)
    assert [r.body["n"] for r in st.outbox] == [1, 2, 3] and st.dropped == 1 and reps[0].done
    taken = st.take(0.0)
    assert [r.body["n"] for r in taken] == [1, 2, 3]
    st.enqueue(Report({"n": 4}, "a"))
    st.give_back(taken)
    assert [r.body["n"] for r in st.outbox] == [2, 3, 4] and st.dropped == 2  # oldest dropped
    st.mark_down(0.0, "test")
    assert st.take(1.0) == [] and len(st.take(5.0)) == 3


def test_refused_lease_is_sent_again_by_id() -> None:
    st = State(settings())
    body = _core.report_body(lease("a", "0.7"), Outcome.TRANSIENT, 502, None, "bad gateway", 12.4)
    rep, other = Report(body, "a"), Report({"outcome": "success", "lease": "0.8"}, "b")
    unknown = tokenlb.Rejected("unknown_lease", "no open lease", 404)
    st.finish([rep, other], [unknown, None])
    assert other.done and other.error is None
    assert not rep.done and list(st.outbox) == [rep]
    assert rep.body == {"outcome": "transient", "id": "a", "success": False, "latency_ms": 12,
                        "status": 502, "error": "bad gateway"}
    st.outbox.clear()
    st.finish([rep], [tokenlb.Rejected("not_found", "no such token", 404)])
    assert rep.done and rep.error is not None and rep.error.code == "not_found" and not st.outbox


def test_report_body_scrubs_the_token_and_bounds_fields() -> None:
    l = lease("a")
    body = _core.report_body(l, Outcome.AUTH, 401, 2.2, f"rejected {l.token} " + "x" * 600, -5)
    assert l.token not in body["error"] and "secr…of-a" in body["error"] and len(body["error"]) == 500
    assert (body["retry_after_s"], body["latency_ms"], body["lease"]) == (3, 0, "0.1")
    ok = _core.report_body(l, Outcome.SUCCESS, None, None, "ignored", None)
    assert ok == {"outcome": "success", "lease": "0.1"}
    cached = _core.report_body(lease("a", None), Outcome.SUCCESS, None, None, None, None)
    assert cached == {"outcome": "success", "id": "a", "success": True}


def test_answers_are_sorted() -> None:
    err = json.dumps({"error": {"code": "no_token_available", "message": "none"}}).encode()
    e = _core.answer_error(503, err, {"retry-after": "4"}, on_get=True)
    assert isinstance(e, tokenlb.NoTokenAvailable) and e.retry_after == 4.0 and e.code == "no_token_available"
    assert _core.answer_error(503, b"proxy", {}, on_get=True) is None
    assert _core.answer_error(502, err, {}, on_get=False) is None
    e = _core.answer_error(401, b"", {}, on_get=False)
    assert isinstance(e, tokenlb.Unauthorized) and e.code == "http_error" and e.status == 401
    e = _core.answer_error(404, json.dumps({"error": {"code": "unknown_pool", "message": "m"}}).encode(), {}, on_get=True)
    assert isinstance(e, tokenlb.Rejected) and (e.code, e.status, e.message) == ("unknown_pool", 404, "m")


def test_batch_answers() -> None:
    body = json.dumps({"results": [{"ok": True}, {"error": {"code": "unknown_lease", "message": "gone"}}]}).encode()
    res = _core.batch_results(body, 2)
    assert res[0] is None and res[1] is not None and (res[1].code, res[1].status) == ("unknown_lease", 404)
    with pytest.raises(tokenlb.ProtocolError):
        _core.batch_results(body, 3)
    assert _core.batch_unsupported(400, b'{"error":{"code":"invalid_json","message":"unknown field `reports`"}}')
    assert not _core.batch_unsupported(401, b"reports")


def test_get_answer_parsing() -> None:
    raw = {"token": "tok-0123456789abcdef", "id": "t_1", "name": "main", "pool": "default",
           "lease": 42, "lease_expires_at": "2030-01-01T00:00:00Z"}
    d = _core.parse_lease(json.dumps(raw).encode(), "p", 0.0)
    assert (d.lease, d.name, d.expires_at) == ("42", "main", "2030-01-01T00:00:00Z")
    assert "0123456789" not in d.masked()
    with pytest.raises(tokenlb.ProtocolError):
        _core.parse_lease(b'{"token":"x","id":"t","lease":{}}', "p", 0.0)


def test_a_dropped_client_is_collected_and_its_reporter_ends() -> None:
    import gc

    client = tokenlb.Client("http://127.0.0.1:9", flush_interval=3600.0)
    handed_out = tokenlb.Lease(client, lease("a"))
    handed_out.report("success")  # queued: starts the background reporter
    thread = client._thread
    assert thread is not None and thread.is_alive()
    del client, handed_out
    gc.collect()
    thread.join(timeout=30)
    assert not thread.is_alive()
