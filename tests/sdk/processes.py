"""Running an example (or the README's snippet) as its own Python process, as a reader
would, and waiting on what it prints (bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def python(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python ARGS` in the repository root with `env` added; killed on the way out."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def line_with(process: asyncio.subprocess.Process, text: str,
                    within: float = 30.0) -> str:
    """The first line it prints that holds `text`; fails with what it printed instead."""
    assert process.stdout is not None
    seen: list[str] = []

    async def find() -> str:
        assert process.stdout is not None
        while line := (await process.stdout.readline()).decode():
            if text in line:
                return line.strip()
            seen.append(line)
        raise AssertionError(f"exited before printing {text!r}:\n{''.join(seen)}")

    try:
        return await asyncio.wait_for(find(), within)
    except TimeoutError:
        raise AssertionError(f"no {text!r} within {within} s:\n{''.join(seen)}") from None


async def finished(process: asyncio.subprocess.Process, within: float = 30.0) -> str:
    """Everything it prints until it exits with 0."""
    out, _ = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode == 0, out.decode()
    return out.decode()
