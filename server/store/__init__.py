"""Storage: one interface over two engines (SQLite embedded, PostgreSQL via asyncpg)."""

from __future__ import annotations

from pathlib import Path

from server.store.accounts import AccountStore
from server.store.chats import ChatStore, JournalChatStore
from server.store.engine import Database, IntegrityError
from server.store.files import FileStore
from server.store.journals import JournalStore
from server.store.lessons import LessonStore
from server.store.messages import MessageStore
from server.store.migrate import migrate
from server.store.postgres import PostgresDatabase
from server.store.roster import RosterStore, TimetableStore
from server.store.safety import SafetyStore
from server.store.sqlite import SqliteDatabase
from server.store.webhooks import WebhookStore

__all__ = ["Database", "IntegrityError", "Store", "open_database", "open_store"]


class Store:
    """What the domain sees: the store's parts, each a small set of named transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.accounts = AccountStore(db)
        self.chats = ChatStore(db)
        self.journals = JournalStore(db)
        self.roster = RosterStore(db)
        self.timetable = TimetableStore(db)
        self.journal_chats = JournalChatStore(db)
        self.files = FileStore(db)
        self.messages = MessageStore(db)
        self.safety = SafetyStore(db)
        self.lessons = LessonStore(db)
        self.webhooks = WebhookStore(db)

    async def close(self) -> None:
        await self.db.close()


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgres://", "postgresql://"))


async def open_database(url: str | None, data_dir: Path) -> Database:
    """``postgresql://…`` opens PostgreSQL; anything else is a SQLite file path."""
    if url is not None and is_postgres_url(url):
        return await PostgresDatabase.connect(url)
    path = Path(url) if url else data_dir / "parta.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteDatabase(path)


async def open_store(url: str | None, data_dir: Path, *, run_migrations: bool = True) -> Store:
    db = await open_database(url, data_dir)
    if run_migrations:
        await migrate(db)
    return Store(db)
