"""A TCP proxy between a client and a server that can stop passing the server's bytes on
(`pause`), as a client that stops reading does: the server's buffers fill and its pings go
unanswered, until it drops the connection. `resume` delivers what was held back."""

from __future__ import annotations

import asyncio
import contextlib


class StallingProxy:
    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.close()
            return
        loop = asyncio.get_running_loop()
        pipes = [loop.create_task(self._pipe(reader, up_writer, stalls=False)),
                 loop.create_task(self._pipe(up_reader, writer, stalls=True))]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._tasks.difference_update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    stalls: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                if stalls:
                    await self._flowing.wait()  # paused: nothing read, so TCP backs up
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()
