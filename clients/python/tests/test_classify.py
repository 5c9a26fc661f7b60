"""The classifiers: HTTP statuses, Wopan replies, exceptions (no server needed)."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import httpx
import pytest

import tokenlb
from tokenlb import Outcome, classify_http_status, classify_wopan, wopan_code_outcome


def wopan(code: str = "0000", status: str = "200", desc: str = "成功") -> Dict[str, Any]:
    return {"STATUS": status, "MSG": "服务调用成功！", "LOGID": "0" * 32,
            "RSP": {"RSP_CODE": code, "RSP_DESC": desc, "DATA": ""}}


@pytest.mark.parametrize(
    "status,retry,expected",
    [
        (200, False, Outcome.SUCCESS), (204, False, Outcome.SUCCESS), (302, False, Outcome.SUCCESS),
        (401, False, Outcome.AUTH), (403, False, Outcome.AUTH), (402, False, Outcome.QUOTA_EXHAUSTED),
        (429, False, Outcome.RATE_LIMITED), (503, True, Outcome.RATE_LIMITED),
        (503, False, Outcome.TRANSIENT), (500, False, Outcome.TRANSIENT), (408, False, Outcome.TRANSIENT),
        (404, False, Outcome.CLIENT_ERROR), (400, False, Outcome.CLIENT_ERROR), (100, False, Outcome.UNKNOWN),
    ],
)
def test_http_status_table(status: int, retry: bool, expected: Outcome) -> None:
    assert classify_http_status(status, retry) is expected


def test_http_response_reads_retry_after_and_reset_headers() -> None:
    r = httpx.Response(429, headers={"Retry-After": "7"})
    v = tokenlb.classify_http_response(r)
    assert (v.outcome, v.status, v.retry_after_s) == (Outcome.RATE_LIMITED, 429, 7)
    r = httpx.Response(503, headers={"x-ratelimit-reset-requests": "2.5"})
    assert tokenlb.classify_http_response(r).outcome is Outcome.RATE_LIMITED
    assert tokenlb.classify_http_response(r).retry_after_s == 3
    assert tokenlb.retry_after_from_headers({"x-ratelimit-reset": "1000000100"}, now=1000000000.0) == 100
    assert tokenlb.retry_after_from_headers({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10
    assert tokenlb.retry_after_from_headers({"Retry-After": "soon"}) is None
    assert tokenlb.retry_after_from_headers({}) is None


@pytest.mark.parametrize(
    "code,expected",
    [("0000", Outcome.SUCCESS), ("9999", Outcome.AUTH), ("1001", Outcome.AUTH), ("8005", Outcome.AUTH),
     ("120002", Outcome.CLIENT_ERROR), ("4242", Outcome.UNKNOWN)],
)
def test_wopan_rsp_codes(code: str, expected: Outcome) -> None:
    assert wopan_code_outcome(code) is expected
    assert classify_wopan(wopan(code)).outcome is expected
    assert classify_wopan(json.dumps(wopan(code)).encode()).outcome is expected


@pytest.mark.parametrize(
    "status,expected",
    [(429, Outcome.RATE_LIMITED), (503, Outcome.RATE_LIMITED), (509, Outcome.QUOTA_EXHAUSTED),
     (402, Outcome.QUOTA_EXHAUSTED), (401, Outcome.AUTH), (403, Outcome.AUTH), (404, Outcome.CLIENT_ERROR),
     (500, Outcome.TRANSIENT), (502, Outcome.TRANSIENT)],
)
def test_wopan_http_statuses(status: int, expected: Outcome) -> None:
    r = httpx.Response(status, headers={"Retry-After": "3"}, json={"STATUS": str(status)})
    v = classify_wopan(r)
    assert (v.outcome, v.status) == (expected, status)
    assert v.retry_after_s == 3


def test_wopan_gateway_and_garbage_are_transient() -> None:
    assert classify_wopan(wopan(status="500")).outcome is Outcome.TRANSIENT
    assert classify_wopan(b"<html>captive portal</html>").outcome is Outcome.TRANSIENT
    assert classify_wopan({"STATUS": "200", "RSP": {}}).outcome is Outcome.TRANSIENT
    assert classify_wopan("[]").outcome is Outcome.TRANSIENT


def test_raise_for_wopan() -> None:
    ok = httpx.Response(200, json=wopan())
    assert tokenlb.raise_for_wopan(ok)["RSP"]["RSP_CODE"] == "0000"
    with pytest.raises(tokenlb.WopanError) as e:
        tokenlb.raise_for_wopan(httpx.Response(200, json=wopan("9999", desc="系统异常")))
    assert (e.value.outcome, e.value.rsp_code) == (Outcome.AUTH, "9999")
    assert "9999" in str(e.value)
    with pytest.raises(tokenlb.WopanError) as e:
        tokenlb.raise_for_wopan(httpx.Response(429, headers={"Retry-After": "5"}))
    assert (e.value.outcome, e.value.retry_after_s, e.value.rsp_code) == (Outcome.RATE_LIMITED, 5, None)


def _status_error(status: int) -> httpx.HTTPStatusError:
    req = httpx.Request("GET", "http://upstream.invalid/x")
    return httpx.HTTPStatusError("boom", request=req, response=httpx.Response(status, request=req))


@pytest.mark.parametrize(
    "exc,expected",
    [
        (tokenlb.UpstreamError("quota_exhausted", "used up"), Outcome.QUOTA_EXHAUSTED),
        (_status_error(401), Outcome.AUTH),
        (_status_error(429), Outcome.RATE_LIMITED),
        (_status_error(404), Outcome.CLIENT_ERROR),
        (httpx.ReadTimeout("slow"), Outcome.TRANSIENT),
        (httpx.ConnectError("refused"), Outcome.TRANSIENT),
        (httpx.UnsupportedProtocol("ftp"), Outcome.CLIENT_ERROR),
        (TimeoutError(), Outcome.TRANSIENT),
        (ConnectionResetError(), Outcome.TRANSIENT),
        (ValueError("a bug"), None),
    ],
)
def test_exceptions(exc: BaseException, expected: Optional[Outcome]) -> None:
    v = tokenlb.classify_exception(exc)
    assert (v.outcome if v is not None else None) is expected


def test_outcome_names_and_retryable() -> None:
    assert [o.value for o in Outcome] == [
        "success", "auth", "rate_limited", "quota_exhausted", "transient", "client_error", "unknown"]
    assert {o for o in Outcome if tokenlb.is_retryable(o)} == {
        Outcome.AUTH, Outcome.RATE_LIMITED, Outcome.QUOTA_EXHAUSTED, Outcome.TRANSIENT}
    assert Outcome.parse("auth") is Outcome.AUTH
    with pytest.raises(ValueError, match="use one of"):
        Outcome.parse("bad")
