"""`hubbub serve | token | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import fields

from hubbub.config import Settings
from hubbub.logs import configure, get_logger

log = get_logger("hubbub.cli")

# A server allocates and frees many small objects per message (frames, futures, structs),
# few of which form cycles. CPython's default (700, 10, 10) ran ~500 young and a few full
# collections per 20,000 fanned-out messages, the full ones ~40 ms each over the ~100,000
# objects of the loaded libraries: ~7 % of the server's time. With a larger young
# generation and the startup objects frozen out of every collection, ~1 %.
GC_THRESHOLDS = (10_000, 50, 100)


async def _settle_gc(app: object) -> None:
    """After startup: move everything allocated so far out of the collector's sight."""
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubbub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        serve.add_argument(flag, dest=f.name, default=None,
                           help=f"overrides HUBBUB_{f.name.upper()}")

    token = commands.add_parser("token", help="print a development JWT")
    token.add_argument("--user-id", default=None, help="a UUID (default: a new one)")
    token.add_argument("--name", default=None, help="display name claim")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")

    commands.add_parser("migrate", help="bring the database schema up to date")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    return _migrate()


def _settings_from(args: argparse.Namespace) -> Settings:
    from hubbub.config import _parse

    overrides = {}
    for f in fields(Settings):
        raw = getattr(args, f.name, None)
        if raw is not None:
            overrides[f.name] = _parse(f.name, str(f.type), raw)
    return Settings.from_env(**overrides)


def _serve(args: argparse.Namespace) -> int:
    from hubbub.app import create_app
    from hubbub.transport.listener import run
    from hubbub.transport.shutdown import handler_timeout

    settings, generated = _settings_from(args).with_secret()
    configure(settings.log_level, settings.log_format)
    if generated:
        log.warning("jwt.dev_secret", note="HUBBUB_JWT_SECRET is not set: using a generated "
                    "development secret saved beside the database; `hubbub token` signs with it")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        pass
    app = create_app(settings)
    gc.set_threshold(*GC_THRESHOLDS)
    app.on_startup.append(_settle_gc)
    run(app, settings,
        # on_shutdown drains within the grace period; this is aiohttp's backstop for a
        # handler still running after that (see transport/shutdown.py).
        shutdown_timeout=handler_timeout(settings.shutdown_grace))
    return 0


def _token(args: argparse.Namespace) -> int:
    from hubbub.domain.tokens import mint

    settings, _ = Settings.from_env().with_secret()
    if settings.jwt_secret is None:
        print("hubbub token signs with a shared secret; set HUBBUB_JWT_SECRET", file=sys.stderr)
        return 2
    user_id = args.user_id or str(uuid.uuid4())
    try:
        user_id = str(uuid.UUID(user_id))
    except ValueError:
        print("--user-id must be a UUID", file=sys.stderr)
        return 2
    print(mint(settings.jwt_secret, user_id, args.name, now=time.time(), ttl_s=args.ttl,
               algorithm=settings.jwt_algorithms[0]))
    return 0


def _migrate() -> int:
    from hubbub.storage import open_store

    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)

    async def run() -> None:
        store = await open_store(settings.database_url, migrate=True)
        await store.close()

    asyncio.run(run())
    log.info("migrate.done", database=settings.database_url.split("://")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
