"""Reference broadcast server on the ``websockets`` library, for side-by-side runs.

Short and fair: uvloop, no compression, the library's own ``broadcast`` (which frames once
per connection and writes without awaiting). Every binary message a client sends goes to
every other connected client. It prints the same "listening" line as ``parta serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    clients.add(ws)
    try:
        async for message in ws:
            broadcast([c for c in clients if c is not ws], message)
    finally:
        clients.discard(ws)


async def main(port: int) -> None:
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        subprotocols=["parta.v1"],  # type: ignore[list-item]
        max_size=1 << 20,
        ping_interval=20,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write(
            json.dumps({"event": "listening", "port": bound, "pid": os.getpid()}) + "\n"
        )
        sys.stdout.flush()
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    uvloop.run(main(parser.parse_args().port))
