"""The Lua scripts of the Redis adapters, and the pipeline that runs one for many callers.

Each script is a file in scripts/ (shipped as package data), read once when its adapter's
module is imported. A line `--! include <file>.lua` (a Lua comment, so the file stays
valid Lua) is replaced by that file's text: the counting scripts share `live_total` that
way. One level only — an included file includes nothing. The counting scripts address
keys they build themselves; on a Redis Cluster those keys share one hash tag and each call
names one of them, so that it runs on their slot (counts.py).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from hubbub.adapters.redis.topology import RedisClient

INCLUDE = "--! include "
# Script calls per pipeline: bounds one round trip's size.
MAX_PIPELINE = 1000


def lua(name: str) -> str:
    """The source of scripts/`name`.lua, its includes put in place."""
    lines = _read(name + ".lua").splitlines(keepends=True)
    return "".join(_read(line[len(INCLUDE):].strip()) if line.startswith(INCLUDE) else line
                   for line in lines)


def _read(file: str) -> str:
    return resources.files(__package__).joinpath("scripts", file).read_text(encoding="utf-8")


class ScriptPipeline:
    """Runs one Lua script for many callers: the calls queued while a round trip is in
    flight go out together in the next pipeline, on one connection, in call order.

    Call order matters: a connection's requests are checked in the order they arrived, so
    of four pipelined requests against three tokens, the fourth is the one refused. Calls
    spread over pooled connections would reach Redis in any order.
    """

    def __init__(self, client: RedisClient, source: str) -> None:
        self._client = client
        self._script = client.register_script(source)
        self._source = source
        self._queue: list[tuple[list[Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        """The script's result.

        Raises:
            RedisError, OSError: Redis failed (the call may or may not have run).
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(([self._script.sha, len(keys), *keys, *args], future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_PIPELINE], self._queue[MAX_PIPELINE:]
                await self._run(batch)
        finally:
            self._task = None

    async def _run(self, batch: list[tuple[list[Any], asyncio.Future[Any]]]) -> None:
        try:
            results = await self._execute([call for call, _ in batch])
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # Redis restarted and forgot the script; those calls did not run
                await self._client.script_load(self._source)
                again = await self._execute([batch[i][0] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved here; each caller re-raises its own copy
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, calls: list[list[Any]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        try:
            for call in calls:
                pipe.execute_command("EVALSHA", *call)
            return list(await pipe.execute(raise_on_error=False))
        finally:
            await pipe.reset()  # type: ignore[no-untyped-call]
