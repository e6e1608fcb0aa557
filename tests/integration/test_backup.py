"""``parta backup``: a copy taken while Parta serves is a data dir that Parta serves again,
with what was acknowledged before the copy and nothing after it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from protocol.client import Client
from tests.databases import fresh_pg_database
from tests.integration.conftest import RunningServer, start_server, stop_cleanly

PHOTO = b"%PDF-1.4\n" + secrets.token_bytes(300_000)  # a document, 300 KB of it


def _backup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "backup", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )


async def _before_and_after(server: RunningServer, *backup_args: str) -> tuple[Client, int, int]:
    """Messages and a file, the backup, then one more message: (client, chat, file id)."""
    alice = await server.sign_in("Смирнова", "Алиса")
    await alice.connect()
    chat = await alice.create_chat("Кружок")
    uploaded = await alice.upload(chat.id, PHOTO, kind="document", name="план.pdf")
    await alice.post(chat.id, "до копии", attachments=[uploaded["id"]])
    await alice.post(chat.id, "тоже до копии")
    # While the server serves (and Alice's connection is open).
    done = await asyncio.to_thread(_backup, "--data-dir", str(server.data_dir), *backup_args)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["blobs"] >= 1 and summary["blob_bytes"] >= len(PHOTO)
    await alice.post(chat.id, "после копии")
    await alice.close()
    return alice, chat.id, uploaded["id"]


async def _check_restored(server: RunningServer, token: str, chat_id: int, file_id: int) -> None:
    alice = Client(server.url, token)  # the session was in the copy too
    try:
        await alice.connect()
        texts = [e.text for e in (await alice.history(chat_id)).events if e.kind == "message"]
        assert texts == ["до копии", "тоже до копии"]
        assert await alice.download(file_id) == PHOTO
    finally:
        await alice.close()


async def test_a_sqlite_backup_taken_while_serving_serves_again(tmp_path: Path) -> None:
    live = start_server(tmp_path / "live")
    try:
        alice, chat_id, file_id = await _before_and_after(live, "--to", str(tmp_path / "copy"))
    finally:
        stop_cleanly(live)
    assert alice.token is not None
    assert not (tmp_path / "copy" / "blobs" / "tmp").exists()
    restored = start_server(tmp_path / "copy")
    try:
        await _check_restored(restored, alice.token, chat_id, file_id)
    finally:
        stop_cleanly(restored)


async def test_a_postgresql_backup_restores_with_pg_restore(tmp_path: Path) -> None:
    db = await fresh_pg_database()
    live = start_server(tmp_path / "live", "--db", db)
    try:
        alice, chat_id, file_id = await _before_and_after(
            live, "--db", db, "--to", str(tmp_path / "copy")
        )
    finally:
        stop_cleanly(live)
    assert alice.token is not None
    restored_db = await fresh_pg_database()
    dump = tmp_path / "copy" / "parta.pgdump"
    done = await asyncio.to_thread(
        subprocess.run,
        ["pg_restore", "--no-owner", "--dbname", restored_db, str(dump)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    restored = start_server(tmp_path / "copy", "--db", restored_db)
    try:
        await _check_restored(restored, alice.token, chat_id, file_id)
    finally:
        stop_cleanly(restored)


def test_a_backup_refuses_a_folder_in_use_or_a_folder_that_is_no_data_dir(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_bytes(bytes(32))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    refused = _backup("--data-dir", str(tmp_path / "data"), "--to", str(tmp_path / "full"))
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    refused = _backup("--data-dir", str(tmp_path / "nothing"), "--to", str(tmp_path / "new"))
    assert refused.returncode == 2 and "is not a Parta data dir" in refused.stderr
