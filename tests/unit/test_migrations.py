"""Migration files: every engine gets each number once, and a number taken twice fails
loudly instead of one of the two never running."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.store.migrate import load_migrations


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_each_engine_runs_every_number_once_in_order(dialect: str) -> None:
    versions = [m.version for m in load_migrations(dialect)]
    assert versions == sorted(set(versions))
    assert versions[:6] == [1, 2, 3, 4, 5, 6]


def test_a_number_taken_by_two_migrations_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.resources.files", lambda _: tmp_path)
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (tmp_path / "0002_search.sqlite.sql").write_text("CREATE TABLE b (x INTEGER);\n")
    (tmp_path / "0002_search.postgres.sql").write_text("CREATE TABLE c (x INTEGER);\n")
    assert [m.name for m in load_migrations("sqlite")] == ["init", "search"]
    assert "TABLE c" in load_migrations("postgres")[1].sql
    (tmp_path / "0002_lessons.sql").write_text("CREATE TABLE d (x INTEGER);\n")
    with pytest.raises(ValueError, match="0002"):
        load_migrations("sqlite")
