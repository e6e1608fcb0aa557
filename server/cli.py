"""``parta``: the operator's command line (DESIGN.md, "CLI")."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
import uvloop

from server.config import Settings, limits_from_env
from server.gateway.proxies import parse_network
from server.logs import setup_logging
from server.media.workers import default_worker_count

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PARTA_DATA_DIR", "parta-data")),
        help="database, secrets, blobs and the dev SMS outbox (default ./parta-data)",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("PARTA_DB"),
        help="postgresql://… for PostgreSQL; default SQLite at <data dir>/parta.db",
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")


def _proxy(text: str) -> str:
    try:
        parse_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _env_proxies(parser: argparse.ArgumentParser) -> list[str]:
    """``PARTA_TRUSTED_PROXIES``, checked as the flag is (argparse cannot check defaults)."""
    raw = os.environ.get("PARTA_TRUSTED_PROXIES", "")
    try:
        return [_proxy(item) for item in raw.split(",") if item.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(f"PARTA_TRUSTED_PROXIES: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parta", description="Parta school communication server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--public-url", help="the address people reach (default http://host:port)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo school through the journal API and print who can sign in",
    )
    serve.add_argument("--sms-webhook-url", default=os.environ.get("PARTA_SMS_WEBHOOK_URL"))
    serve.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        type=_proxy,
        metavar="ADDRESS[/BITS]",
        help="a reverse proxy whose X-Forwarded-For is believed (repeatable; default: "
        "PARTA_TRUSTED_PROXIES, comma-separated; none)",
    )
    serve.add_argument(
        "--sfu-workers",
        type=int,
        default=int(os.environ.get("PARTA_SFU_WORKERS", default_worker_count())),
        help="SFU worker processes (default: one per core; 0 turns calls off)",
    )
    serve.add_argument("--media-host", default="127.0.0.1", help="address SFU workers bind")
    serve.add_argument(
        "--media-announce", help="address put in ICE candidates (default: the media host)"
    )
    serve.add_argument(
        "--media-port",
        type=int,
        default=int(os.environ.get("PARTA_MEDIA_PORT", "40000")),
        help="UDP and ICE-TCP port of the first SFU worker; the next ones follow (0: any free)",
    )

    migrate = commands.add_parser("migrate", help="apply database migrations")
    _common(migrate)

    journals = commands.add_parser("journals", help="register journals and rotate their secrets")
    journal_commands = journals.add_subparsers(dest="journal_command", required=True)
    add = journal_commands.add_parser("add", help="register a journal")
    _common(add)
    add.add_argument("--region-code", required=True)
    add.add_argument("--region-name", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--link-url", required=True, help="the journal's page that links a profile")
    add.add_argument("--webhook-url", help="where Parta posts call events")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    rotate = journal_commands.add_parser("rotate", help="issue a new API token and secret")
    _common(rotate)
    rotate.add_argument("journal_id")
    rotate.add_argument("--json", action="store_true", help="print one JSON object")

    copy = commands.add_parser(
        "backup", help="copy the data dir and its database while Parta runs (docs/operating.md)"
    )
    _common(copy)
    copy.add_argument("--to", type=Path, required=True, help="an empty or new folder")

    users = commands.add_parser(
        "loadtest-users",
        help="create N profiles with session tokens straight in the store (load tests only)",
    )
    _common(users)
    users.add_argument("--count", type=int, required=True)
    users.add_argument(
        "--chats", type=int, default=0, help="also make this many chats, members spread evenly"
    )
    users.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    base = Settings(
        data_dir=args.data_dir, db=args.db, log_json=args.log_json, limits=limits_from_env()
    )
    if args.command != "serve":
        return base
    return dataclasses.replace(
        base,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        sms_webhook_url=args.sms_webhook_url,
        trusted_proxies=tuple(args.trusted_proxies or ()),
        sfu_workers=args.sfu_workers,
        media_host=args.media_host,
        media_announce=args.media_announce,
        media_port=args.media_port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve" and args.trusted_proxies is None:
        args.trusted_proxies = _env_proxies(parser)
    settings = settings_from(args)
    setup_logging(json_lines=settings.log_json)
    if args.command == "serve":
        from server.app import serve

        run(serve(settings, demo=args.demo))
    elif args.command == "migrate":
        from server.ops import migrate_command

        applied = run(migrate_command(settings))
        print(f"applied migrations: {applied or 'none (up to date)'}")
    elif args.command == "journals":
        from server.ops import journal_command

        credentials = run(journal_command(settings, args))
        if args.json:
            sys.stdout.write(orjson.dumps(credentials).decode() + "\n")
        else:
            for key, value in credentials.items():
                print(f"{key}: {value}")
            print("Keep the token and the secret: they are shown only now.")
    elif args.command == "backup":
        from server.backup import BackupError, backup

        try:
            done = backup(settings, args.to)
        except BackupError as exc:
            parser.exit(2, f"parta backup: {exc}\n")
        sys.stdout.write(orjson.dumps(done).decode() + "\n")
    elif args.command == "loadtest-users":
        from server.ops import loadtest_users

        result = run(loadtest_users(settings, args.count, args.chats))
        if args.json:
            sys.stdout.write(orjson.dumps(result).decode() + "\n")
        else:
            print(f"created {len(result['users'])} users and {len(result['chats'])} chats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
