"""A minimal Wopan call for the tests: ``AppQueryUser`` (the cheap token check) on the
api-user dispatcher, in the real envelope with its MD5 sign. The emulator takes ``param`` as
a plain JSON object as well as encrypted, so no AES is needed here (a real client encrypts
it; see research/wopan-protocol.md §2–3)."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any, Dict, Mapping

import httpx

import tokenlb


def envelope(key: str, channel: str, param: Dict[str, Any]) -> Dict[str, Any]:
    res_time = int(time.time() * 1000)
    req_seq = random.randint(100000, 189998)
    sign = hashlib.md5(f"{key}{res_time}{req_seq}{channel}".encode()).hexdigest()
    header = {"key": key, "resTime": res_time, "reqSeq": req_seq, "channel": channel, "version": "", "sign": sign}
    return {"header": header, "body": {"param": param, "secret": True, "clientId": "1001000021"}}


def query_user(http: httpx.Client, base: str, token: str) -> httpx.Response:
    return http.post(
        f"{base}/api-user/dispatcher",
        json=envelope("AppQueryUser", "api-user", {"accessToken": token}),
        headers={"Accesstoken": token, "Origin": "https://pan.wo.cn"},
    )


async def query_user_async(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    return await http.post(
        f"{base}/api-user/dispatcher",
        json=envelope("AppQueryUser", "api-user", {"accessToken": token}),
        headers={"Accesstoken": token, "Origin": "https://pan.wo.cn"},
    )


def check_user(http: httpx.Client, base: str, token: str) -> Mapping[str, Any]:
    """The envelope of a successful AppQueryUser; :class:`tokenlb.WopanError` otherwise."""
    return tokenlb.raise_for_wopan(query_user(http, base, token))
