"""The application: builds the store, the rules, the bus and the gateway, and runs them."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson

from server.api.auth import AuthApi
from server.api.files import FilesApi
from server.api.health import HealthApi
from server.api.invites import InvitesApi
from server.api.journal import JournalApi
from server.api.lessons import LessonsApi
from server.api.links import LinksApi
from server.api.openapi import OpenApi
from server.api.router import Router
from server.api.static import StaticApi
from server.bus.local import LocalBus
from server.config import Settings
from server.demo.journal import DemoJournal
from server.domain.auth import AuthService
from server.domain.calls import CallService, CallTimes
from server.domain.chats import ChatService
from server.domain.clock import system_clock
from server.domain.journals import JournalService
from server.domain.lessons import LessonService
from server.domain.linking import LinkingService
from server.domain.members import MemberService
from server.domain.messages import MessageService
from server.domain.recordings import RecordingSink
from server.domain.webhooks import JournalWebhooks
from server.files.blobs import BlobStore
from server.files.service import FileService
from server.gateway.dispatch import Dispatcher
from server.gateway.server import Gateway
from server.gateway.websocket import Flusher
from server.media.workers import WorkerConfig, WorkerPool
from server.security import load_or_create_secret
from server.sms import OutboxSender, SmsSender, WebhookSender
from server.store import Store, open_store

logger = logging.getLogger("parta")

WEBCLIENT_DIST = Path(__file__).resolve().parent.parent / "webclient" / "dist"


def parta_version() -> str:
    try:
        return version("parta")
    except PackageNotFoundError:
        return "dev"


class App:
    def __init__(self, settings: Settings, store: Store, *, demo: bool = False) -> None:
        self.settings = settings
        self.store = store
        clock = system_clock
        sms: SmsSender = (
            WebhookSender(settings.sms_webhook_url)
            if settings.sms_webhook_url
            else OutboxSender(settings.data_dir / "sms-outbox.jsonl")
        )
        secret = load_or_create_secret(settings.data_dir)
        self.flusher = Flusher(asyncio.get_running_loop())
        self.bus = LocalBus(self.flusher)
        self.auth = AuthService(store, sms, secret, settings.limits, clock)
        self.chats = ChatService(store, self.bus, clock)
        self.messages = MessageService(
            store, self.bus, clock, edit_window_s=settings.limits.edit_window_s
        )
        self.members = MemberService(store, self.chats, self.messages, clock)
        self.files = FileService(
            store.files, BlobStore(settings.data_dir / "blobs"), self.chats, settings.limits, clock
        )
        self.media = WorkerPool(
            WorkerConfig(
                count=settings.sfu_workers,
                host=settings.media_host,
                announce=settings.media_announce or settings.media_host,
                base_port=settings.media_port,
            ),
            on_event=lambda worker, event: self.calls.media_event(event),
            on_lost=lambda worker, rooms: self.calls.worker_lost(rooms),
        )
        self.journals = JournalService(store, self.chats, clock)
        self.webhooks = JournalWebhooks(store, clock)
        limits = settings.limits
        self.lessons = LessonService(
            store,
            self.chats,
            self.journals,
            self.webhooks,
            clock,
            settings.base_url,
            early_start_ms=limits.call_early_start_s * 1000,
        )
        self.calls = CallService(
            self.media,
            self.lessons,
            store,
            clock,
            CallTimes(
                empty_end_ms=limits.call_empty_end_s * 1000,
                overrun_ms=limits.call_overrun_s * 1000,
            ),
            recordings=RecordingSink(
                settings.data_dir / "recordings", self.files, self.messages, self.lessons
            ),
        )
        self.linking = LinkingService(store, self.chats, secret, clock)
        self.demo = DemoJournal(settings, store, self.journals, self.linking) if demo else None
        router = Router()
        HealthApi(store, self.media, parta_version()).register(router)
        AuthApi(self.auth, settings).register(router)
        JournalApi(self.journals).register(router)
        LessonsApi(self.journals, self.lessons, self.auth, settings).register(router)
        LinksApi(self.linking, self.auth, settings).register(router)
        FilesApi(self.files, settings, self.auth).register(router)
        InvitesApi(self.auth, settings).register(router)
        OpenApi(parta_version(), settings.base_url).register(router)
        StaticApi(WEBCLIENT_DIST).register(router)
        if self.demo is not None:
            self.demo.register(router)
        self.router = router
        self.dispatcher = Dispatcher(
            self.auth, self.chats, self.messages, self.members, self.calls, store, self.bus
        )
        self.gateway = Gateway(settings, router, self.dispatcher, self.flusher)


def bind(settings: Settings) -> tuple[socket.socket, Settings]:
    """Bind the listening socket first, so that with ``--port 0`` the real port (and so the
    public origin that cookies and links use) is known before anything else is built."""
    sock = socket.create_server((settings.host, settings.port), backlog=4096, reuse_port=False)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    return sock, dataclasses.replace(settings, port=port)


async def serve(settings: Settings, *, demo: bool = False) -> None:
    sock, settings = bind(settings)
    store = await open_store(settings.db, settings.data_dir)
    app = App(settings, store, demo=demo)
    port = await app.gateway.start(sock)
    # Media workers start beside the gateway: chat does not wait for them.
    media_start = asyncio.get_running_loop().create_task(app.media.start())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = settings.public_url or f"http://{settings.host}:{port}"
    # One line on stdout is the "started" signal that tests and scripts wait for.
    sys.stdout.write(
        orjson.dumps({"event": "listening", "url": url, "port": port, "pid": os.getpid()}).decode()
        + "\n"
    )
    sys.stdout.flush()
    logger.info("listening", extra={"url": url, "database": store.db.dialect})
    # The demo journal pushes its school through the HTTP API, so only once we listen.
    seeding = None if app.demo is None else loop.create_task(app.demo.seed())
    background = [loop.create_task(app.webhooks.run()), loop.create_task(app.calls.run())]
    await stop.wait()
    logger.info("shutting down")
    for task in background:
        task.cancel()
    if seeding is not None:
        seeding.cancel()
    await app.gateway.shutdown()
    media_start.cancel()
    await app.media.stop()
    await store.close()
