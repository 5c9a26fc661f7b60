"""The web API's cloud drive (DESIGN §5 reads, §11 writes), sync (:class:`Drive`) and
asyncio (:class:`AsyncDrive`): list folders and files, get a download link, create folders,
rename, move, copy, delete, upload, and read the quota, through ``tokenlb webapi``, so
every call gets the pool's failover, its cache fallback for reads, and listings refreshed
after writes.

Reads are open; writes need the web API's key (``--api-key`` / ``TOKENLB_WEBAPI_KEY``, or
the generated ``webapi-key`` file in its data dir), sent as ``Authorization: Bearer``. An
upload streams: give :meth:`Drive.upload` an iterable of bytes (or a file opened in binary
mode) and its length; nothing is read into memory here.

Every refusal is a :class:`DriveError` with the web API's status, error ``code``
(``name_taken``, ``not_found``, ``upstream_rate_limited``, …) and, for a 503, its
``retry_after``. The key never appears in an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import httpx

from .errors import TokenlbError

__all__ = [
    "AsyncDrive",
    "DownloadLink",
    "Drive",
    "DriveEntry",
    "DriveError",
    "Listing",
    "Transferred",
    "Usage",
    "Written",
]


class DriveError(TokenlbError):
    """The web API refused a drive call (``status``, ``code``, ``message``), or could not be
    reached (code ``unreachable``), or a write was asked for without a key (``no_key``);
    ``retry_after`` is its ``Retry-After`` in seconds, if it sent one."""

    def __init__(
        self, code: str, message: str, status: Optional[int] = None, retry_after: Optional[float] = None
    ) -> None:
        super().__init__(code, message, status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class DriveEntry:
    """One entry of a folder."""

    id: str
    name: str
    #: ``"folder"`` or ``"file"``.
    kind: str
    size: int
    #: The file's content id (files only).
    fid: Optional[str]
    file_type: str
    create_time: str

    @property
    def is_folder(self) -> bool:
        return self.kind == "folder"

    @staticmethod
    def from_json(v: Mapping[str, Any]) -> "DriveEntry":
        return DriveEntry(
            id=str(v["id"]),
            name=str(v["name"]),
            kind=str(v["type"]),
            size=int(v.get("size", 0)),
            fid=v.get("fid"),
            file_type=str(v.get("file_type", "")),
            create_time=str(v.get("create_time", "")),
        )


@dataclass(frozen=True)
class Listing:
    """A folder's listing and where it came from (``source``: ``realtime`` or ``cache``;
    ``stale``: from the cache because realtime failed)."""

    folder: str
    entries: List[DriveEntry]
    source: str
    cached_at: Optional[str]
    stale: bool

    @property
    def names(self) -> List[str]:
        return sorted(e.name for e in self.entries)


@dataclass(frozen=True)
class DownloadLink:
    """A short-lived download link for a file."""

    url: str
    name: str
    size: int
    download_url: str


@dataclass(frozen=True)
class Written:
    """What a create, rename or upload made: its path and the entry as the drive lists it."""

    path: str
    entry: DriveEntry


@dataclass(frozen=True)
class Transferred:
    """One moved or copied entry."""

    source: str
    to: str


@dataclass(frozen=True)
class Usage:
    """The drive's quota."""

    used_bytes: int
    total_bytes: int
    source: str
    cached_at: Optional[str]


Body = Union[bytes, Iterable[bytes]]
AsyncBody = Union[bytes, AsyncIterable[bytes]]


def _error(r: httpx.Response) -> DriveError:
    code, message = "http_error", f"HTTP {r.status_code}"
    try:
        e = r.json().get("error")
        if isinstance(e, dict) and isinstance(e.get("code"), str):
            code, message = e["code"], str(e.get("message", message))
    except ValueError:
        pass
    retry: Optional[float] = None
    raw = r.headers.get("retry-after")
    if raw is not None:
        try:
            retry = float(raw)
        except ValueError:
            retry = None
    return DriveError(code, message[:300], r.status_code, retry)


def _answer(r: httpx.Response) -> Dict[str, Any]:
    if r.status_code >= 400:
        raise _error(r)
    try:
        v = r.json()
    except ValueError as e:
        raise DriveError("protocol", f"the web API's answer is not JSON ({e})", r.status_code) from None
    if not isinstance(v, dict):
        raise DriveError("protocol", "the web API's answer is not a JSON object", r.status_code)
    return v


def _listing(v: Mapping[str, Any]) -> Listing:
    raw = v.get("files", v.get("folders"))
    if not isinstance(raw, list):
        raise DriveError("protocol", "a listing without files or folders")
    return Listing(
        folder=str(v.get("folder", "")),
        entries=[DriveEntry.from_json(e) for e in raw],
        source=str(v.get("source", "")),
        cached_at=v.get("cached_at"),
        stale=bool(v.get("stale", False)),
    )


def _written(v: Mapping[str, Any]) -> Written:
    return Written(path=str(v["path"]), entry=DriveEntry.from_json(v["entry"]))


def _transfers(v: Mapping[str, Any], key: str) -> List[Transferred]:
    return [Transferred(source=str(t["from"]), to=str(t["to"])) for t in v.get(key, [])]


def _usage(v: Mapping[str, Any]) -> Usage:
    return Usage(
        used_bytes=int(v["used_bytes"]),
        total_bytes=int(v["total_bytes"]),
        source=str(v.get("source", "")),
        cached_at=v.get("cached_at"),
    )


def _flag(b: bool) -> str:
    return "true" if b else "false"


class _Base:
    def __init__(self, url: str, key: Optional[str]) -> None:
        self._url = url.rstrip("/")
        self._key = key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r}, key={'<set>' if self._key else None})"

    def _auth(self) -> Dict[str, str]:
        if not self._key:
            raise DriveError("no_key", "writing to the drive needs the web API key (key=…)")
        return {"Authorization": f"Bearer {self._key}"}


class Drive(_Base):
    """A client of one ``tokenlb webapi`` (sync). ``key`` is needed for writes only."""

    def __init__(self, url: str, key: Optional[str] = None, timeout: float = 60.0) -> None:
        super().__init__(url, key)
        self._http = httpx.Client(base_url=self._url, timeout=timeout, trust_env=False)

    def __enter__(self) -> "Drive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kw: Any) -> Dict[str, Any]:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise DriveError("unreachable", f"cannot reach the web API: {type(e).__name__}") from None
        return _answer(r)

    def folders(self, parent: Optional[str] = None, realtime: bool = True) -> Listing:
        """The folders in the root (or in ``parent``)."""
        params = {"realtime": _flag(realtime)}
        if parent is not None:
            params["folder"] = parent
        return _listing(self._send("GET", "/api/folders", params=params))

    def files(self, folder: str, realtime: bool = True) -> Listing:
        """Every entry of ``folder`` (a path such as ``A/B``)."""
        return _listing(self._send("GET", "/api/files", params={"folder": folder, "realtime": _flag(realtime)}))

    def download_link(self, path: str) -> DownloadLink:
        v = self._send("GET", "/api/download/", params={"url": path})
        return DownloadLink(str(v["url"]), str(v["name"]), int(v["size"]), str(v["download_url"]))

    def create_folder(self, path: str) -> Written:
        return _written(self._send("POST", "/api/folders", headers=self._auth(), json={"path": path}))

    def rename(self, path: str, name: str) -> Written:
        return _written(self._send("POST", "/api/rename", headers=self._auth(), json={"path": path, "name": name}))

    def move(self, paths: Sequence[str], to: str) -> List[Transferred]:
        v = self._send("POST", "/api/move", headers=self._auth(), json={"paths": list(paths), "to": to})
        return _transfers(v, "moved")

    def copy(self, paths: Sequence[str], to: str) -> List[Transferred]:
        v = self._send("POST", "/api/copy", headers=self._auth(), json={"paths": list(paths), "to": to})
        return _transfers(v, "copied")

    def delete(self, paths: Sequence[str]) -> List[str]:
        v = self._send("DELETE", "/api/files", headers=self._auth(), json={"paths": list(paths)})
        return [str(p) for p in v.get("deleted", [])]

    def upload(self, path: str, body: Body, length: int) -> Written:
        """Uploads ``length`` bytes from ``body`` (bytes, or an iterable of chunks such as a
        file opened ``"rb"``) as the file ``path``, streamed."""
        headers = {**self._auth(), "Content-Length": str(length)}
        return _written(self._send("PUT", "/api/upload", params={"path": path}, headers=headers, content=body))

    def usage(self, realtime: bool = True) -> Usage:
        return _usage(self._send("GET", "/api/usage", params={"realtime": _flag(realtime)}))


class AsyncDrive(_Base):
    """:class:`Drive` for asyncio: the same methods, awaited."""

    def __init__(self, url: str, key: Optional[str] = None, timeout: float = 60.0) -> None:
        super().__init__(url, key)
        self._http = httpx.AsyncClient(base_url=self._url, timeout=timeout, trust_env=False)

    async def __aenter__(self) -> "AsyncDrive":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kw: Any) -> Dict[str, Any]:
        try:
            r = await self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise DriveError("unreachable", f"cannot reach the web API: {type(e).__name__}") from None
        return _answer(r)

    async def folders(self, parent: Optional[str] = None, realtime: bool = True) -> Listing:
        params = {"realtime": _flag(realtime)}
        if parent is not None:
            params["folder"] = parent
        return _listing(await self._send("GET", "/api/folders", params=params))

    async def files(self, folder: str, realtime: bool = True) -> Listing:
        return _listing(
            await self._send("GET", "/api/files", params={"folder": folder, "realtime": _flag(realtime)})
        )

    async def download_link(self, path: str) -> DownloadLink:
        v = await self._send("GET", "/api/download/", params={"url": path})
        return DownloadLink(str(v["url"]), str(v["name"]), int(v["size"]), str(v["download_url"]))

    async def create_folder(self, path: str) -> Written:
        return _written(await self._send("POST", "/api/folders", headers=self._auth(), json={"path": path}))

    async def rename(self, path: str, name: str) -> Written:
        body = {"path": path, "name": name}
        return _written(await self._send("POST", "/api/rename", headers=self._auth(), json=body))

    async def move(self, paths: Sequence[str], to: str) -> List[Transferred]:
        body = {"paths": list(paths), "to": to}
        return _transfers(await self._send("POST", "/api/move", headers=self._auth(), json=body), "moved")

    async def copy(self, paths: Sequence[str], to: str) -> List[Transferred]:
        body = {"paths": list(paths), "to": to}
        return _transfers(await self._send("POST", "/api/copy", headers=self._auth(), json=body), "copied")

    async def delete(self, paths: Sequence[str]) -> List[str]:
        v = await self._send("DELETE", "/api/files", headers=self._auth(), json={"paths": list(paths)})
        return [str(p) for p in v.get("deleted", [])]

    async def upload(self, path: str, body: AsyncBody, length: int) -> Written:
        headers = {**self._auth(), "Content-Length": str(length)}
        v = await self._send("PUT", "/api/upload", params={"path": path}, headers=headers, content=body)
        return _written(v)

    async def usage(self, realtime: bool = True) -> Usage:
        return _usage(await self._send("GET", "/api/usage", params={"realtime": _flag(realtime)}))
