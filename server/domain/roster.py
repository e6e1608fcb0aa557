"""A school as its journal describes it (after OneRoster 1.2), checked, and the chats it implies.

``validate`` turns a whole-school snapshot into a ``Plan``: the people, classes, groups and
relations with every reference resolved, and the system chats that follow from them with
their members: per class the students' chat (class teacher and students) and the parents'
chat (class teacher and the students' parents), per school the colleagues' chat (teachers
and staff), per teaching group its subject chat (teachers and students). Pure: the store
applies the plan as a diff.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from protocol.errors import ErrorCode
from server.domain.errors import DomainError, FieldError

ExtId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
PersonRole = Literal["teacher", "student", "parent", "staff"]
DEFAULT_TIMEZONE = "Europe/Moscow"
MAX_ROWS = 50_000


class SchoolIn(msgspec.Struct, frozen=True):
    id: ExtId
    name: Name
    timezone: str = DEFAULT_TIMEZONE


class SubjectIn(msgspec.Struct, frozen=True):
    id: ExtId
    name: Name


class ClassIn(msgspec.Struct, frozen=True):
    id: ExtId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    grade: Annotated[int, msgspec.Meta(ge=0, le=13)]
    class_teacher_id: ExtId | None = None
    student_ids: Annotated[list[ExtId], msgspec.Meta(max_length=200)] = []


class GroupIn(msgspec.Struct, frozen=True):
    id: ExtId
    subject_id: ExtId
    name: Name
    class_id: ExtId | None = None
    teacher_ids: Annotated[list[ExtId], msgspec.Meta(max_length=20)] = []
    student_ids: Annotated[list[ExtId], msgspec.Meta(max_length=500)] = []


class UserIn(msgspec.Struct, frozen=True):
    id: ExtId
    role: PersonRole
    last_name: Name
    first_name: Name
    middle_name: Annotated[str, msgspec.Meta(max_length=120)] | None = None


class ParentIn(msgspec.Struct, frozen=True):
    parent_id: ExtId
    student_id: ExtId


class RosterIn(msgspec.Struct, frozen=True):
    school: SchoolIn
    subjects: Annotated[list[SubjectIn], msgspec.Meta(max_length=1000)] = []
    classes: Annotated[list[ClassIn], msgspec.Meta(max_length=1000)] = []
    groups: Annotated[list[GroupIn], msgspec.Meta(max_length=10_000)] = []
    users: Annotated[list[UserIn], msgspec.Meta(max_length=MAX_ROWS)] = []
    parents: Annotated[list[ParentIn], msgspec.Meta(max_length=MAX_ROWS)] = []


@dataclass(frozen=True, slots=True)
class SystemChat:
    """A chat the roster implies. ``key`` is stable across snapshots (ext ids only)."""

    key: str
    kind: str
    title: str
    # person ext id → role in the chat ("admin" for the class teacher / group teachers)
    members: dict[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    school: SchoolIn
    subjects: dict[str, str]  # ext id → name
    classes: dict[str, ClassIn]
    groups: dict[str, GroupIn]
    users: dict[str, UserIn]
    parents: set[tuple[str, str]]
    chats: list[SystemChat] = field(default_factory=list)


def _check_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _index(
    rows: Iterable[msgspec.Struct], what: str, errors: list[FieldError]
) -> dict[str, msgspec.Struct]:
    found: dict[str, msgspec.Struct] = {}
    for i, row in enumerate(rows):
        ext_id = row.id  # type: ignore[attr-defined]
        if ext_id in found:
            errors.append(FieldError(f"{what}[{i}].id", f"duplicate id {ext_id!r}"))
        found[ext_id] = row
    return found


def validate(roster: RosterIn) -> Plan:
    """Check every reference and role; a DomainError lists every bad row at once."""
    errors: list[FieldError] = []
    if not _check_timezone(roster.school.timezone):
        errors.append(
            FieldError("school.timezone", f"unknown time zone {roster.school.timezone!r}")
        )
    subjects = _index(roster.subjects, "subjects", errors)
    users: dict[str, UserIn] = _index(roster.users, "users", errors)  # type: ignore[assignment]
    classes: dict[str, ClassIn] = _index(roster.classes, "classes", errors)  # type: ignore[assignment]
    groups: dict[str, GroupIn] = _index(roster.groups, "groups", errors)  # type: ignore[assignment]

    def user(path: str, ext_id: str, roles: tuple[str, ...]) -> None:
        found = users.get(ext_id)
        if found is None:
            errors.append(FieldError(path, f"unknown user {ext_id!r}"))
        elif found.role not in roles:
            errors.append(
                FieldError(path, f"user {ext_id!r} is a {found.role}, expected {'/'.join(roles)}")
            )

    student_class: dict[str, str] = {}
    for i, cls in enumerate(roster.classes):
        if cls.class_teacher_id is not None:
            user(f"classes[{i}].class_teacher_id", cls.class_teacher_id, ("teacher", "staff"))
        for j, student in enumerate(cls.student_ids):
            user(f"classes[{i}].student_ids[{j}]", student, ("student",))
            if student in student_class and student_class[student] != cls.id:
                errors.append(
                    FieldError(
                        f"classes[{i}].student_ids[{j}]",
                        f"student {student!r} is also in class {student_class[student]!r}",
                    )
                )
            student_class[student] = cls.id
    for i, group in enumerate(roster.groups):
        if group.subject_id not in subjects:
            errors.append(
                FieldError(f"groups[{i}].subject_id", f"unknown subject {group.subject_id!r}")
            )
        if group.class_id is not None and group.class_id not in classes:
            errors.append(FieldError(f"groups[{i}].class_id", f"unknown class {group.class_id!r}"))
        for j, teacher in enumerate(group.teacher_ids):
            user(f"groups[{i}].teacher_ids[{j}]", teacher, ("teacher", "staff"))
        for j, student in enumerate(group.student_ids):
            user(f"groups[{i}].student_ids[{j}]", student, ("student",))
    parents: set[tuple[str, str]] = set()
    for i, relation in enumerate(roster.parents):
        user(f"parents[{i}].parent_id", relation.parent_id, ("parent",))
        user(f"parents[{i}].student_id", relation.student_id, ("student",))
        parents.add((relation.parent_id, relation.student_id))
    if errors:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"the roster has {len(errors)} problem(s)",
            errors=tuple(errors[:200]),
        )
    plan = Plan(
        school=roster.school,
        subjects={ext_id: s.name for ext_id, s in subjects.items()},  # type: ignore[attr-defined]
        classes=classes,
        groups=groups,
        users=users,
        parents=parents,
    )
    plan.chats.extend(system_chats(plan))
    return plan


def system_chats(plan: Plan) -> list[SystemChat]:
    school = plan.school.id
    chats: list[SystemChat] = []
    parents_of: dict[str, list[str]] = {}
    for parent, student in plan.parents:
        parents_of.setdefault(student, []).append(parent)
    staff = {ext_id: "member" for ext_id, u in plan.users.items() if u.role in ("teacher", "staff")}
    chats.append(
        SystemChat(f"{school}:colleagues", "colleagues", f"Коллеги — {plan.school.name}", staff)
    )
    for cls in plan.classes.values():
        teacher = {cls.class_teacher_id: "admin"} if cls.class_teacher_id else {}
        students = dict.fromkeys(cls.student_ids, "member")
        chats.append(
            SystemChat(f"{school}:class:{cls.id}", "class", f"{cls.name} класс", students | teacher)
        )
        family = {p: "member" for s in cls.student_ids for p in parents_of.get(s, ())}
        chats.append(
            SystemChat(
                f"{school}:class:{cls.id}:parents",
                "parents",
                f"Родители {cls.name}",
                family | teacher,
            )
        )
    for group in plan.groups.values():
        subject = plan.subjects.get(group.subject_id, "")
        cls_name = plan.classes[group.class_id].name if group.class_id in plan.classes else ""
        if cls_name:
            title = f"{subject} {cls_name}"  # "Математика 7А", "(группа 1)" for a subgroup
            if group.name not in (cls_name, subject, title):
                title = f"{title} ({group.name})"
        elif subject.lower() in group.name.lower():
            title = group.name
        else:
            title = f"{subject} — {group.name}"
        members = dict.fromkeys(group.student_ids, "member") | dict.fromkeys(
            group.teacher_ids, "admin"
        )
        chats.append(SystemChat(f"{school}:group:{group.id}", "subject", title, members))
    return chats
