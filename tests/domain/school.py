"""A small school as a journal would send it, to build tests on."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from server.domain.roster import RosterIn

SCHOOL: dict[str, Any] = {
    "school": {"id": "1", "name": "Школа № 17", "timezone": "Europe/Moscow"},
    "subjects": [{"id": "math", "name": "Математика"}, {"id": "phys", "name": "Физика"}],
    "classes": [
        {
            "id": "7a",
            "name": "7А",
            "grade": 7,
            "class_teacher_id": "t1",
            "student_ids": ["s1", "s2"],
        },
        {"id": "7b", "name": "7Б", "grade": 7, "class_teacher_id": "t2", "student_ids": ["s3"]},
    ],
    "groups": [
        {
            "id": "g-math-7a",
            "class_id": "7a",
            "subject_id": "math",
            "name": "7А",
            "teacher_ids": ["t1"],
            "student_ids": ["s1", "s2"],
        },
        {
            "id": "g-phys-7",
            "subject_id": "phys",
            "name": "Физика 7 (сборная)",
            "teacher_ids": ["t2"],
            "student_ids": ["s1", "s3"],
        },
    ],
    "users": [
        {
            "id": "t1",
            "role": "teacher",
            "last_name": "Иванова",
            "first_name": "Мария",
            "middle_name": "Петровна",
        },
        {"id": "t2", "role": "teacher", "last_name": "Смирнов", "first_name": "Олег"},
        {"id": "st", "role": "staff", "last_name": "Кузнецова", "first_name": "Елена"},
        {"id": "s1", "role": "student", "last_name": "Петров", "first_name": "Коля"},
        {"id": "s2", "role": "student", "last_name": "Сидорова", "first_name": "Аня"},
        {"id": "s3", "role": "student", "last_name": "Орлов", "first_name": "Миша"},
        {"id": "p1", "role": "parent", "last_name": "Петрова", "first_name": "Ольга"},
    ],
    # p1 has two children in two classes: Коля (7А) and Миша (7Б).
    "parents": [{"parent_id": "p1", "student_id": "s1"}, {"parent_id": "p1", "student_id": "s3"}],
}


def school(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SCHOOL)
    data.update(changes)
    return data


def roster(data: dict[str, Any] | None = None) -> RosterIn:
    return msgspec.convert(data or SCHOOL, RosterIn)
