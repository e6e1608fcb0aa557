"""The demo school as its journal keeps it: people, classes, subjects, groups, a timetable.

Plain data and pure functions: ``roster()`` is the whole-school snapshot a journal PUTs to
``/api/v1/roster``, ``schedule(today)`` the week of lessons around ``today`` it PUTs to
``/api/v1/schedule``. Ids are the journal's own and never change, so pushing again is a
no-op.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

SCHOOL_ID = "demo-school-1"
SCHOOL_NAME = "Школа № 1 (демо)"
TIMEZONE = "Europe/Moscow"
CLASS_TEACHER = {"7a": "t01", "8b": "t02"}


@dataclass(frozen=True, slots=True)
class DemoPerson:
    id: str
    role: str  # teacher | student | parent | staff
    last_name: str
    first_name: str
    middle_name: str
    sex: str
    birth_date: str
    # what the journal shows beside the name: a position, what one teaches
    note: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.last_name} {self.first_name} {self.middle_name}"

    @property
    def short_name(self) -> str:
        return f"{self.last_name} {self.first_name}"


@dataclass(frozen=True, slots=True)
class DemoClass:
    id: str
    name: str
    grade: int
    class_teacher_id: str
    student_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DemoGroup:
    id: str
    class_id: str
    subject_id: str
    name: str
    teacher_id: str
    student_ids: tuple[str, ...]


def _p(ext_id: str, role: str, name: str, sex: str, born: str, note: str = "") -> DemoPerson:
    last, first, middle = name.split()
    return DemoPerson(ext_id, role, last, first, middle, sex, born, note)


M, F = "male", "female"

TEACHERS = (
    _p("t01", "teacher", "Иванова Мария Петровна", F, "1979-03-14", "русский язык, литература"),
    _p("t02", "teacher", "Смирнов Олег Викторович", M, "1975-11-02", "физика"),
    _p("t03", "teacher", "Кузнецова Анна Сергеевна", F, "1986-06-21", "алгебра, геометрия"),
    _p("t04", "teacher", "Попов Дмитрий Алексеевич", M, "1983-01-30", "история"),
    _p("t05", "teacher", "Волкова Екатерина Андреевна", F, "1990-09-08", "английский язык"),
    _p("t06", "teacher", "Морозова Ольга Игоревна", F, "1988-04-17", "английский язык"),
)
STAFF = (
    _p("a01", "staff", "Лебедева Наталья Владимировна", F, "1972-07-25", "заместитель директора"),
    _p("a02", "staff", "Новиков Андрей Павлович", M, "1981-10-12", "педагог-психолог"),
)
STUDENTS_7A = (
    _p("s701", "student", "Алексеев Артём Дмитриевич", M, "2012-04-11"),
    _p("s702", "student", "Белова София Андреевна", F, "2012-08-23"),
    _p("s703", "student", "Васильев Максим Игоревич", M, "2012-02-05"),
    _p("s704", "student", "Григорьева Анна Сергеевна", F, "2012-11-30"),
    _p("s705", "student", "Егоров Иван Сергеевич", M, "2012-06-17"),
    _p("s706", "student", "Захарова Полина Алексеевна", F, "2012-09-02"),
    _p("s707", "student", "Козлов Даниил Романович", M, "2012-12-19"),
    _p("s708", "student", "Макарова Виктория Олеговна", F, "2012-05-08"),
)
STUDENTS_8B = (
    _p("s801", "student", "Николаев Кирилл Андреевич", M, "2011-03-27"),
    _p("s802", "student", "Орлова Дарья Максимовна", F, "2011-07-14"),
    _p("s803", "student", "Павлов Михаил Евгеньевич", M, "2011-01-09"),
    _p("s804", "student", "Романова Алиса Владимировна", F, "2011-10-03"),
    _p("s805", "student", "Егорова Ульяна Сергеевна", F, "2011-05-21"),
    _p("s806", "student", "Тихонова Ксения Павловна", F, "2011-12-15"),
    _p("s807", "student", "Фёдоров Лев Николаевич", M, "2011-08-30"),
    _p("s808", "student", "Яковлев Тимофей Артёмович", M, "2011-02-18"),
)
# parent, then their children
PARENTS = (
    (_p("p701", "parent", "Алексеева Ирина Викторовна", F, "1984-02-19"), ("s701",)),
    (_p("p702", "parent", "Алексеев Дмитрий Олегович", M, "1982-09-04"), ("s701",)),
    (_p("p703", "parent", "Белова Юлия Сергеевна", F, "1986-12-01"), ("s702",)),
    (_p("p704", "parent", "Васильева Наталья Петровна", F, "1985-05-13"), ("s703",)),
    (_p("p705", "parent", "Григорьев Сергей Николаевич", M, "1980-08-08"), ("s704",)),
    # two children in two classes: Иван (7А) and Ульяна (8Б)
    (_p("p706", "parent", "Егорова Татьяна Николаевна", F, "1983-04-26"), ("s705", "s805")),
    (_p("p707", "parent", "Захарова Ольга Михайловна", F, "1987-03-09"), ("s706",)),
    (_p("p708", "parent", "Козлова Светлана Юрьевна", F, "1988-10-22"), ("s707",)),
    (_p("p709", "parent", "Макаров Олег Васильевич", M, "1981-06-30"), ("s708",)),
    (_p("p801", "parent", "Николаева Марина Александровна", F, "1983-01-17"), ("s801",)),
    (_p("p802", "parent", "Орлов Максим Геннадьевич", M, "1979-11-11"), ("s802",)),
    (_p("p803", "parent", "Павлова Елена Викторовна", F, "1985-07-07"), ("s803",)),
    (_p("p804", "parent", "Романова Анастасия Игоревна", F, "1986-09-28"), ("s804",)),
    (_p("p805", "parent", "Тихонов Павел Андреевич", M, "1978-04-03"), ("s806",)),
    (_p("p806", "parent", "Фёдорова Людмила Сергеевна", F, "1984-12-24"), ("s807",)),
    (_p("p807", "parent", "Яковлева Алёна Дмитриевна", F, "1987-02-14"), ("s808",)),
)

PEOPLE: dict[str, DemoPerson] = {
    p.id: p
    for p in (*TEACHERS, *STAFF, *STUDENTS_7A, *STUDENTS_8B, *(parent for parent, _ in PARENTS))
}
CHILDREN: dict[str, tuple[str, ...]] = {parent.id: kids for parent, kids in PARENTS}

SUBJECTS = {
    "rus": "Русский язык",
    "lit": "Литература",
    "alg": "Алгебра",
    "geo": "Геометрия",
    "phys": "Физика",
    "hist": "История",
    "eng": "Английский язык",
}
# Who teaches what, in both classes; English is taught in two groups per class.
TEACHER_OF = {"rus": "t01", "lit": "t01", "alg": "t03", "geo": "t03", "phys": "t02", "hist": "t04"}
ENGLISH_TEACHERS = ("t05", "t06")

CLASSES = (
    DemoClass("7a", "7А", 7, CLASS_TEACHER["7a"], tuple(s.id for s in STUDENTS_7A)),
    DemoClass("8b", "8Б", 8, CLASS_TEACHER["8b"], tuple(s.id for s in STUDENTS_8B)),
)
CLASS_OF: dict[str, DemoClass] = {s: c for c in CLASSES for s in c.student_ids}


def _groups() -> tuple[DemoGroup, ...]:
    groups: list[DemoGroup] = []
    for cls in CLASSES:
        for subject, teacher in TEACHER_OF.items():
            groups.append(
                DemoGroup(
                    f"{cls.id}-{subject}", cls.id, subject, cls.name, teacher, cls.student_ids
                )
            )
        half = len(cls.student_ids) // 2
        for n, (teacher, students) in enumerate(
            zip(ENGLISH_TEACHERS, (cls.student_ids[:half], cls.student_ids[half:]), strict=True),
            start=1,
        ):
            groups.append(
                DemoGroup(f"{cls.id}-eng-{n}", cls.id, "eng", f"группа {n}", teacher, students)
            )
    return tuple(groups)


GROUPS = _groups()

# Accounts made ready to sign in (educational profile created and linked): the class
# teacher of 7А, a student, a parent of two children in two classes, a staff member.
SIGN_IN = (
    ("t01", "+79000000001"),
    ("s701", "+79000000002"),
    ("p706", "+79000000003"),
    ("a01", "+79000000004"),
)


def describe(person: DemoPerson) -> str:
    """The person's place in the school, as a journal would print it beside the name."""
    if person.role == "teacher":
        classes = [c.name for c in CLASSES if c.class_teacher_id == person.id]
        lead = f", классный руководитель {', '.join(classes)}" if classes else ""
        return f"учитель ({person.note}){lead}"
    if person.role == "staff":
        return f"сотрудник ({person.note})"
    if person.role == "student":
        return f"ученик {CLASS_OF[person.id].name}"
    kids = [f"{PEOPLE[k].short_name}, {CLASS_OF[k].name}" for k in CHILDREN[person.id]]
    return f"родитель ({'; '.join(kids)})"


def roster() -> dict[str, Any]:
    """The body of ``PUT /api/v1/roster``."""
    return {
        "school": {"id": SCHOOL_ID, "name": SCHOOL_NAME, "timezone": TIMEZONE},
        "subjects": [{"id": k, "name": v} for k, v in SUBJECTS.items()],
        "classes": [
            {
                "id": c.id,
                "name": c.name,
                "grade": c.grade,
                "class_teacher_id": c.class_teacher_id,
                "student_ids": list(c.student_ids),
            }
            for c in CLASSES
        ],
        "groups": [
            {
                "id": g.id,
                "class_id": g.class_id,
                "subject_id": g.subject_id,
                "name": g.name,
                "teacher_ids": [g.teacher_id],
                "student_ids": list(g.student_ids),
            }
            for g in GROUPS
        ],
        "users": [
            {
                "id": p.id,
                "role": p.role,
                "last_name": p.last_name,
                "first_name": p.first_name,
                "middle_name": p.middle_name,
            }
            for p in PEOPLE.values()
        ],
        "parents": [
            {"parent_id": parent.id, "student_id": kid} for parent, kids in PARENTS for kid in kids
        ],
    }


# --- the timetable ------------------------------------------------------------------------

BELLS = ((dt.time(8, 30), 45), (dt.time(9, 25), 45), (dt.time(10, 30), 45), (dt.time(11, 35), 45))
# Monday to Friday, four lessons a day per class; built so that no teacher is in two
# places at once (both English teachers take their groups in the same slot).
WEEK: dict[str, tuple[tuple[str, ...], ...]] = {
    "7a": (
        ("rus", "alg", "hist", "eng"),
        ("alg", "rus", "phys", "lit"),
        ("rus", "geo", "eng", "hist"),
        ("lit", "alg", "rus", "phys"),
        ("hist", "eng", "lit", "geo"),
    ),
    "8b": (
        ("alg", "rus", "eng", "hist"),
        ("rus", "phys", "lit", "alg"),
        ("geo", "rus", "hist", "eng"),
        ("alg", "lit", "phys", "rus"),
        ("eng", "hist", "geo", "lit"),
    ),
}
DAYS_AROUND = 3


def week_around(today: dt.date) -> tuple[dt.date, dt.date]:
    """The seven days around ``today``: three before, three after."""
    return today - dt.timedelta(days=DAYS_AROUND), today + dt.timedelta(days=DAYS_AROUND)


def school_today(now: dt.datetime | None = None) -> dt.date:
    """Today in the school's time zone."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(zoneinfo.ZoneInfo(TIMEZONE)).date()


def schedule(today: dt.date) -> dict[str, Any]:
    """The body of ``PUT /api/v1/schedule``: the lessons of the week around ``today``."""
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first, last = week_around(today)
    lessons: list[dict[str, str]] = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        if day.weekday() >= len(WEEK["7a"]):
            continue  # no lessons at the weekend
        for cls in CLASSES:
            for slot, subject in enumerate(WEEK[cls.id][day.weekday()]):
                bell, minutes = BELLS[slot]
                starts = dt.datetime.combine(day, bell, zone)
                ends = starts + dt.timedelta(minutes=minutes)
                lessons.extend(
                    {
                        "id": f"{day:%Y%m%d}-{slot + 1}-{group.id}",
                        "group_id": group.id,
                        "teacher_id": group.teacher_id,
                        "starts_at": starts.isoformat(),
                        "ends_at": ends.isoformat(),
                    }
                    for group in GROUPS
                    if group.class_id == cls.id and group.subject_id == subject
                )
    return {
        "school_id": SCHOOL_ID,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "lessons": lessons,
    }
