"""`hubbub serve | check-config | token | api-key | migrate | copy-db | webhooks`, and
`hubbub --version`.

A setting that cannot be used stops every command with one line per problem on stderr,
naming the variable, flag or file key and what it accepts, and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import NoReturn

import hubbub
from hubbub import __version__
from hubbub.config import Settings, describe, hidden
from hubbub.logs import configure, get_logger
from hubbub.settings_sources import (
    FILE_SUFFIX,
    Loaded,
    SettingsError,
    env_name,
    flag_name,
    load_settings,
    report,
    require_key,
)

log = get_logger("hubbub.cli")
# What a settings error (and a misspelt flag) exits with, as argparse does.
USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as for every other settings error, instead of the usage block."""
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="hubbub", description=hubbub.__doc__)
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _with_settings(commands.add_parser("serve", help="run the server"))
    _with_settings(commands.add_parser(
        "check-config", help="validate the settings and print them, secrets masked"))
    _with_settings(commands.add_parser("migrate",
                                       help="bring the database schema up to date"))
    token = commands.add_parser("token", help="print a development JWT")
    _config_flag(token)
    token.add_argument("--user-id", default=None, help="your backend's user id: 1-128 "
                       "printable ASCII characters without spaces (default: a new UUID)")
    token.add_argument("--name", default=None, help="display name claim")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    commands.add_parser("api-key", help="print a new random key for HUBBUB_API_KEYS "
                        "(the server API)")
    copy = commands.add_parser(
        "copy-db", help="copy every row of one database into an empty one (SQLite to "
        "PostgreSQL, or back) and check the copy")
    copy.add_argument("--from", dest="source", required=True, metavar="URL",
                      help="the database to copy: sqlite:///PATH or postgresql://…")
    copy.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="the database to fill; it must exist (an SQLite file is made)")
    copy.add_argument("--force", action="store_true",
                      help="replace the target's rows instead of refusing a non-empty one")
    copy.add_argument("--batch-size", type=_positive, default=None, metavar="ROWS",
                      help="rows per read and per insert (default 1000)")

    hooks = commands.add_parser("webhooks", help="list or replay dead-lettered webhook "
                                "events (docs/WEBHOOKS.md)")
    _config_flag(hooks)
    hooks_do = hooks.add_subparsers(dest="webhooks_command", required=True)
    dead = hooks_do.add_parser("dead-letters", help="print the dead events, oldest first, "
                               "one JSON object a line")
    dead.add_argument("--limit", type=_positive, default=100, help="at most this many")
    replay = hooks_do.add_parser("replay", help="send dead events again")
    replay.add_argument("ids", nargs="*", metavar="ID", help="the events' ids (webhook-id)")
    replay.add_argument("--all", action="store_true", help="every dead event")

    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = {
        "serve": _serve, "check-config": _check_config, "token": _token, "migrate": _migrate,
        "copy-db": _copy_db, "api-key": _api_key, "webhooks": _webhooks,
    }[args.command]
    try:
        return run(args)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"hubbub: {problem}", file=sys.stderr)
        return USAGE_ERROR


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="a TOML file of settings (overrides HUBBUB_CONFIG)")


def _with_settings(parser: argparse.ArgumentParser) -> None:
    """A flag per setting (`--max-frame-bytes`), `--<name>-file` for secrets, `--config`."""
    _config_flag(parser)
    for name, field in Settings.model_fields.items():
        accepts = describe(name)
        help_text = (f"{field.description}{'' if accepts == 'text' else ': ' + accepts} "
                     f"({env_name(name)})").replace("%", "%%")  # argparse formats help with %
        if field.annotation is bool:
            parser.add_argument(flag_name(name), dest=name, default=None, nargs="?",
                                const="on", metavar="on|off", help=help_text)
        else:
            parser.add_argument(flag_name(name), dest=name, default=None, help=help_text)
        if hidden(name):
            parser.add_argument(flag_name(name + FILE_SUFFIX), dest=name + FILE_SUFFIX,
                                metavar="PATH", default=None, help=f"read {name} from a file")


def _load(args: argparse.Namespace) -> Loaded:
    flags = {key: value for key, value in vars(args).items()
             if key in Settings.model_fields or key.endswith(FILE_SUFFIX)}
    return load_settings(flags, config_file=getattr(args, "config", None))


def _start_logging(loaded: Loaded) -> Settings:
    settings = loaded.settings
    configure(settings.log_level, settings.log_format)
    for warning in loaded.warnings:
        log.warning("settings.unknown_variable", note=warning)
    return settings


def _serve(args: argparse.Namespace) -> int:
    loaded = _load(args)
    require_key(loaded)
    settings, generated = _start_logging(loaded).with_secret()
    if generated:
        log.warning("jwt.dev_secret", note="development mode: HUBBUB_JWT_SECRET is not set, "
                    "so a generated secret saved beside the database verifies tokens; "
                    "`hubbub token` signs with it")
    if settings.workers > 1:
        from hubbub.workers import supervise  # each worker imports the server on its own

        return supervise(settings)
    from hubbub.runner import serve  # the server's imports, only for the server

    return serve(settings)


def _check_config(args: argparse.Namespace) -> int:
    loaded = _load(args)
    for warning in loaded.warnings:
        print(f"hubbub: warning: {warning}", file=sys.stderr)
    require_key(loaded)
    print(f"hubbub {__version__}: the configuration is valid")
    print("\n".join(report(loaded)))
    return 0


def _token(args: argparse.Namespace) -> int:
    from hubbub.domain.tokens import mint
    from hubbub.protocol.objects import canonical_user_id, is_user_id

    loaded = _load(args)
    for warning in loaded.warnings:
        print(f"hubbub: warning: {warning}", file=sys.stderr)
    settings, _ = loaded.settings.with_secret()
    if settings.jwt_secret is None:
        print("hubbub: hubbub token signs with a shared secret; set HUBBUB_JWT_SECRET",
              file=sys.stderr)
        return USAGE_ERROR
    user_id = str(uuid.uuid4()) if args.user_id is None else args.user_id
    if not is_user_id(user_id):
        print("hubbub: --user-id must be 1-128 printable ASCII characters without spaces",
              file=sys.stderr)
        return USAGE_ERROR
    print(mint(settings.jwt_secret, canonical_user_id(user_id), args.name, now=time.time(),
               ttl_s=args.ttl, algorithm=settings.jwt_algorithms[0],
               user_claim=settings.jwt_user_claim, name_claim=settings.jwt_name_claim))
    return 0


def _api_key(args: argparse.Namespace) -> int:
    """256 random bits, URL-safe: a key to add to `HUBBUB_API_KEYS` (comma-separated)."""
    print(secrets.token_urlsafe(32))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from hubbub.adapters.sql import open_sql_database

    settings = _start_logging(_load(args))

    async def run() -> None:
        database = await open_sql_database(settings.database_url, migrate=True)
        await database.close()

    asyncio.run(run())
    log.info("migrate.done", database=settings.database_url.split("://")[0])
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _copy_db(args: argparse.Namespace) -> int:
    """Exit status 0: copied and checked; 1: failed, the target unchanged; 2: refused."""
    from hubbub.adapters.sql.copy import BATCH_SIZE, Failed, Refused, copy_database, shown

    configure("warning", "text")
    try:
        copied = asyncio.run(copy_database(args.source, args.target, force=args.force,
                                           batch_size=args.batch_size or BATCH_SIZE))
    except Refused as exc:
        print(f"hubbub: copy-db: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except Failed as exc:
        print(f"hubbub: copy-db failed, nothing was written to the target: {exc}",
              file=sys.stderr)
        return 1
    print(f"copied {shown(args.source)} to {shown(args.target)}")
    print("\n".join(copied.summary()))
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    """`dead-letters`: one JSON line per dead event; `replay`: how many went back in line."""
    import msgspec

    from hubbub.adapters.sql import open_sql_database
    from hubbub.services.dead_letters import DeadLetters

    if args.webhooks_command == "replay" and bool(args.ids) == args.all:
        print("hubbub: webhooks replay: name event ids, or --all", file=sys.stderr)
        return USAGE_ERROR
    settings = _start_logging(_load(args))

    async def run() -> None:
        database = await open_sql_database(settings.database_url, migrate=False)
        try:
            dead = DeadLetters(database.outbox)
            if args.webhooks_command == "dead-letters":
                for letter in await dead.list(args.limit):
                    print(msgspec.json.encode(letter).decode())
            else:
                count = await dead.replay(None if args.all else args.ids)
                print(f"replayed {count} event{'' if count == 1 else 's'}")
        finally:
            await database.close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
