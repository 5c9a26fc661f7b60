"""The drive through the web API (DESIGN §11), from Python: one file's story from folder to
deletion, each step seen in the next listing, refusals as :class:`tokenlb.DriveError` with
the web API's code, and writes refused without the key. Sync and asyncio."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import httpx
import pytest

import tokenlb

from .conftest import WEBAPI_KEY, WebApi

DATA = bytes(i % 251 for i in range(3 * 1024 * 1024))


def chunks(size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(DATA), size):
        yield DATA[i : i + size]


async def achunks(size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for c in chunks(size):
        yield c


def test_the_drive_story(webapi: WebApi) -> None:
    with tokenlb.Drive(webapi.url, key=WEBAPI_KEY) as drive:
        root = drive.folders()
        assert root.source == "realtime"
        assert "BD-another" in root.names
        used = drive.usage().used_bytes

        made = drive.create_folder("PyDir")
        assert made.path == "PyDir" and made.entry.is_folder
        assert "PyDir" in drive.folders(realtime=False).names

        up = drive.upload("PyDir/a.bin", chunks(), len(DATA))
        assert (up.path, up.entry.size) == ("PyDir/a.bin", len(DATA))
        listing = drive.files("PyDir", realtime=False)
        assert listing.source == "cache", "the write refreshed the cached listing"
        assert listing.names == ["a.bin"]
        link = drive.download_link("PyDir/a.bin")
        with httpx.Client(trust_env=False, timeout=30) as http:
            assert http.get(link.download_url).content == DATA
        assert drive.usage().used_bytes >= used + len(DATA)

        with pytest.raises(tokenlb.DriveError) as taken:
            drive.create_folder("PyDir")
        assert (taken.value.status, taken.value.code) == (409, "name_taken")

        assert drive.rename("PyDir/a.bin", "b.bin").path == "PyDir/b.bin"
        assert drive.copy(["PyDir/b.bin"], "BD-another")[0].to == "BD-another/b.bin"
        moved = drive.move(["PyDir/b.bin"], "")
        assert (moved[0].source, moved[0].to) == ("PyDir/b.bin", "b.bin")
        assert drive.files("PyDir", realtime=False).names == []
        assert len(drive.delete(["b.bin", "BD-another/b.bin", "PyDir"])) == 3
        assert "PyDir" not in drive.folders(realtime=False).names


def test_writes_need_the_key(webapi: WebApi) -> None:
    with tokenlb.Drive(webapi.url) as reader:
        assert "BD-another" in reader.folders().names, "reads are open"
        with pytest.raises(tokenlb.DriveError) as no_key:
            reader.create_folder("X")
        assert no_key.value.code == "no_key"
    with tokenlb.Drive(webapi.url, key="not-the-key-000000000000") as wrong:
        assert "not-the-key" not in repr(wrong)
        with pytest.raises(tokenlb.DriveError) as refused:
            wrong.create_folder("X")
        assert refused.value.status == 401
        assert "not-the-key" not in str(refused.value)


@pytest.mark.anyio
async def test_the_async_drive(webapi: WebApi) -> None:
    async with tokenlb.AsyncDrive(webapi.url, key=WEBAPI_KEY) as drive:
        await drive.create_folder("AsyncDir")
        up = await drive.upload("AsyncDir/a.bin", achunks(), len(DATA))
        assert up.entry.size == len(DATA)
        assert (await drive.files("AsyncDir", realtime=False)).names == ["a.bin"]
        assert (await drive.rename("AsyncDir/a.bin", "c.bin")).path == "AsyncDir/c.bin"
        assert (await drive.usage()).total_bytes > 0
        assert await drive.delete(["AsyncDir"]) == ["AsyncDir"]
        assert "AsyncDir" not in (await drive.folders(realtime=False)).names
