"""A manager from before the batch form (DESIGN §9) still gets every report, one by one.
The released binary has the batch form, so this older manager is an httpx MockTransport that
answers as the previous release did."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import httpx
import pytest

import tokenlb
from tokenlb._core import LeaseData

OLD_REFUSAL = {"error": {"code": "invalid_json", "message": "Failed to deserialize the JSON body: "
               "reports: unknown field `reports`, expected one of `lease`, `outcome`"}}


class OldManager:
    def __init__(self) -> None:
        self.singles: List[Dict[str, Any]] = []
        self.batches = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/token/report"
        body = json.loads(request.content)
        if "reports" in body:
            self.batches += 1
            return httpx.Response(400, json=OLD_REFUSAL)
        self.singles.append(body)
        return httpx.Response(200, json={"id": body.get("id", "t_1"), "ok": True, "state": "active"})


def data(n: int) -> LeaseData:
    return LeaseData(f"secret-value-{n:04d}", f"t_{n}", f"t{n}", "default", f"0.{n}", None, False, 0.0)


def test_sync_falls_back_to_single_reports() -> None:
    old = OldManager()
    client = tokenlb.Client("http://127.0.0.1:1", transport=httpx.MockTransport(old), flush_interval=3600.0)
    for n in range(3):
        tokenlb.Lease(client, data(n)).report("success")
    tokenlb.Lease(client, data(3)).report("auth")  # at once, with the three before it
    assert [b["lease"] for b in old.singles] == ["0.0", "0.1", "0.2", "0.3"]
    tokenlb.Lease(client, data(4)).report("success")
    tokenlb.Lease(client, data(5)).report("success")
    client.close()
    assert old.batches == 1, "asked once, then remembered"
    assert len(old.singles) == 6 and client.status().batch_reports is False
    assert client.status().queued_reports == 0


@pytest.mark.anyio
async def test_async_falls_back_to_single_reports() -> None:
    old = OldManager()
    client = tokenlb.AsyncClient("http://127.0.0.1:1", transport=httpx.MockTransport(old), flush_interval=3600.0)
    for n in range(4):
        await tokenlb.AsyncLease(client, data(n)).report("success")
    await client.close()
    assert old.batches == 1 and [b["lease"] for b in old.singles] == ["0.0", "0.1", "0.2", "0.3"]
    assert client.status().batch_reports is False
