"""The README's worked example runs, against the test manager and emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import pytest

from .conftest import WEBAPI_KEY, Emulator, Manager, WebApi

README = Path(__file__).resolve().parents[1] / "README.md"


def test_worked_example_runs(manager: Manager, emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    example = blocks[0]
    assert 'pool="default"' in example and "http://127.0.0.1:8000" in example
    code = (
        example.replace("http://127.0.0.1:8000", manager.url)
        .replace("http://127.0.0.1:8900", emulator.url)
    )
    namespace: Dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    namespace["http"].close()
    out = capsys.readouterr().out.split()
    assert out[0] == "0000" and out[1] == "3"
    assert sum(int(r["success"]) for r in manager.rows().values()) == 3

    # The asyncio example continues in the same namespace (it runs its own event loop).
    async_code = blocks[1].replace("http://127.0.0.1:8000", manager.url)
    exec(compile(async_code, str(README), "exec"), namespace)
    assert capsys.readouterr().out.split() == ["10"]
    assert sum(int(r["success"]) for r in manager.rows().values()) == 3 + 11


def test_drive_example_runs(webapi: WebApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    example = next(b for b in blocks if "Drive(" in b)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "webapi-key").write_text(WEBAPI_KEY + "\n")
    (tmp_path / "db.dump").write_bytes(b"x" * 100_000)
    code = example.replace("http://127.0.0.1:5000", webapi.url).replace("Docs", "BD-another")
    exec(compile(code, str(README), "exec"), {"__name__": "readme_drive"})
