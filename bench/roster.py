"""``python -m bench roster``: how long a journal's whole-school snapshot takes to apply.

A synthetic school (by default 2,000 students in 80 classes, 600 teaching groups, their
parents, teachers and staff: about 6,000 people) is sent with ``PUT /api/v1/roster`` to a
real server process, twice: the first time everything is created (with the system chats
and their rosters), the second time nothing changes. Floors: under 5 s and under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from protocol.client import http_request

RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = {"teacher": "t", "staff": "w", "student": "s", "parent": "p"}
LAST = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов"]
FIRST = ["Анна", "Мария", "Иван", "Дмитрий", "Елена", "Павел", "Ольга", "Никита", "Софья"]
SUBJECTS = ["Математика", "Русский язык", "Литература", "Физика", "История", "Биология",
            "Английский язык", "Информатика"]  # fmt: skip


def make_school(students: int, classes: int, groups: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    users: list[dict[str, Any]] = []

    def person(role: str, n: int) -> str:
        ext = f"{PREFIX[role]}{n}"
        users.append({
            "id": ext,
            "role": role,
            "last_name": rng.choice(LAST),
            "first_name": rng.choice(FIRST),
        })  # fmt: skip
        return ext

    teachers = [person("teacher", n) for n in range(max(classes * 2, groups // 4))]
    pupils = [person("student", n) for n in range(students)]
    class_rows = []
    per_class = students // classes
    for c in range(classes):
        grade = 1 + c % 11
        class_rows.append({
            "id": f"c{c}",
            "name": f"{grade}{'АБВГДЕЖЗ'[c // 11 % 8]}",
            "grade": grade,
            "class_teacher_id": teachers[c],
            "student_ids": pupils[c * per_class : (c + 1) * per_class],
        })  # fmt: skip
    subjects = [{"id": f"sub{i}", "name": name} for i, name in enumerate(SUBJECTS)]
    group_rows = []
    for g in range(groups):
        cls = class_rows[g % classes]
        group_rows.append({
            "id": f"g{g}",
            "class_id": cls["id"],
            "subject_id": subjects[g // classes % len(subjects)]["id"],
            "name": cls["name"],
            "teacher_ids": [teachers[g % len(teachers)]],
            "student_ids": cls["student_ids"],
        })  # fmt: skip
    parents = [  # three students in four have two parents
        {"parent_id": person("parent", 2 * n + k), "student_id": student}
        for n, student in enumerate(pupils)
        for k in range(1 + (n % 4 != 0))
    ]
    users.extend(
        {"id": f"w{n}", "role": "staff", "last_name": rng.choice(LAST), "first_name": "Сотрудник"}
        for n in range(30)
    )
    return {
        "school": {"id": "bench-1", "name": "Школа для замеров", "timezone": "Europe/Moscow"},
        "subjects": subjects,
        "classes": class_rows,
        "groups": group_rows,
        "users": users,
        "parents": parents,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--db", help="postgresql://… (default: SQLite in a temporary data dir)")
    parser.add_argument("--out", type=Path, help="JSON results file")


def _register_journal(common: list[str]) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "server", "journals", "add", *common, "--region-code", "00",
         "--region-name", "Замеры", "--name", "Бенчмарк", "--link-url",
         "https://journal.example/link", "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    token: str = json.loads(made.stdout)["api_token"]
    return token


def _serve(common: list[str]) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--sfu-workers", "0", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    url: str = json.loads(server.stdout.readline())["url"]
    return server, url


async def main(args: argparse.Namespace) -> dict[str, Any]:
    school = make_school(args.students, args.classes, args.groups)
    body = orjson.dumps(school)
    with tempfile.TemporaryDirectory(prefix="parta-bench-") as tmp:
        data_dir = Path(tmp)
        db = ["--db", args.db] if args.db else []
        common = ["--data-dir", str(data_dir), *db]
        token = await asyncio.to_thread(_register_journal, common)
        server, url = await asyncio.to_thread(_serve, common)
        try:
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
            timings, answers = [], []
            for _ in range(2):
                started = time.perf_counter()
                status, _, answer = await http_request(
                    "PUT", url + "/api/v1/roster", body=body, headers=headers, timeout_s=300
                )
                timings.append(round(time.perf_counter() - started, 3))
                if status != 200:
                    raise RuntimeError(f"roster refused: {status} {answer[:500]!r}")
                answers.append(json.loads(answer))
        finally:
            server.terminate()
            server.wait(30)
    result = {
        "scenario": "roster",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": "postgres" if args.db else "sqlite",
        "people": len(school["users"]),
        "classes": len(school["classes"]),
        "groups": len(school["groups"]),
        "body_bytes": len(body),
        "first_s": timings[0],
        "again_s": timings[1],
        "first_created": answers[0]["created"],
        "again_changed": sum(
            n for bucket in ("created", "updated", "removed") for n in answers[1][bucket].values()
        ),
    }
    out = args.out or RESULTS / f"roster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(
        f"roster of {result['people']} people, {result['classes']} classes,"
        f" {result['groups']} groups on {result['database']}: first {timings[0]} s,"
        f" again {timings[1]} s (floors 5 s, 1 s)"
    )
    print(f"results: {out}")
    return result
