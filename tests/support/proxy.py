"""A TCP proxy a test puts between one server and Redis, to cut that server off silently.

`blackhole()` keeps every connection open but drops whatever either side sends from then
on, as a network that loses packets does: the server's publishes never reach Redis, and no
error tells it so before its own timeouts. Nothing in the server knows about the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib


class Proxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self._host = host
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.blackholed = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://{self._host}:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def blackhole(self) -> None:
        self.blackholed = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self._host, self._target_port)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, upstream_writer]
        pipes = [asyncio.get_running_loop().create_task(self._pipe(reader, writer))
                 for reader, writer in ((client_reader, upstream_writer),
                                        (upstream_reader, client_writer))]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._tasks.difference_update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if not self.blackholed:
                    writer.write(data)
                    await writer.drain()
        writer.close()
