"""``parta serve --demo``: the demo school arrives through the Journal API, the printed phones
sign in to their chats, the demo journal's pages work, and a second start changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import msgspec
import orjson
import phonenumbers
import pytest

from protocol.client import Client, http_request
from server.demo import school
from server.demo.seed import CREDENTIALS_FILE, RULE
from server.domain.roster import RosterIn, validate
from tests.integration.conftest import RunningServer, start_server, stop_server

COLLEAGUES = f"Коллеги — {school.SCHOOL_NAME}"
# What each printed person finds in Parta right after signing in.
EXPECTED_CHATS = {
    "Иванова Мария Петровна": {
        COLLEAGUES,
        "7А класс",
        "Родители 7А",
        "Русский язык 7А",
        "Литература 7А",
        "Русский язык 8Б",
        "Литература 8Б",
    },
    "Алексеев Артём Дмитриевич": {
        "7А класс",
        "Русский язык 7А",
        "Литература 7А",
        "Алгебра 7А",
        "Геометрия 7А",
        "Физика 7А",
        "История 7А",
        "Английский язык 7А (группа 1)",
    },
    "Егорова Татьяна Николаевна": {"Родители 7А", "Родители 8Б"},
    "Лебедева Наталья Владимировна": {COLLEAGUES},
}
_PERSON_LINE = re.compile(r"^  (\+7[\d -]+?)  (\S+ \S+ \S+)\s+(.+)$")
# Phones of people who are not in the printed block (never +7 900 000-00-0x).
_other_phones = (f"+7916555{n:04d}" for n in itertools.count(1))


@dataclass
class Demo:
    server: RunningServer
    block: list[str]
    # full name → phone in E.164, as printed
    phones: dict[str, str]
    # full name → session token, once signed in (a second code would come too soon)
    tokens: dict[str, str] = field(default_factory=dict)

    async def client(self, name: str) -> Client:
        """A client signed in as a printed person."""
        if name in self.tokens:
            return Client(self.server.url, self.tokens[name])
        client = await sign_in(self.server, self.phones[name])
        assert client.token is not None
        self.tokens[name] = client.token
        return client


def read_demo_block(server: RunningServer) -> list[str]:
    """The lines the demo prints after "listening", once it has seeded (its "ready" signal)."""
    assert server.process.stdout is not None
    lines: list[str] = []
    while True:
        line = server.process.stdout.readline()
        assert line, "the server ended before printing the demo block"
        lines.append(line.rstrip("\n"))
        if len(lines) > 1 and lines[-1] == RULE:
            assert lines[0] == RULE, lines
            return lines


def printed_phones(block: list[str]) -> dict[str, str]:
    phones = {}
    for line in block:
        match = _PERSON_LINE.match(line)
        if match:
            number = phonenumbers.parse(match[1])
            assert phonenumbers.is_valid_number(number), line
            phones[match[2]] = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.E164
            )
    return phones


def start_demo(data_dir: Path, *extra: str) -> Demo:
    server = start_server(data_dir, "--demo", *extra)
    block = read_demo_block(server)
    return Demo(server, block, printed_phones(block))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    log = stop_server(running.server)
    assert running.server.process.returncode == 0, log
    assert "Traceback" not in log, log


async def sign_in(server: RunningServer, phone: str) -> Client:
    client = Client(server.url)
    await client.request_code(phone)
    await client.verify(phone, server.code_for(phone))
    return client


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    status, response_headers, body = await http_request("GET", url, headers=headers)
    return status, response_headers, body.decode()


async def post_form(
    url: str, fields: dict[str, str | list[str]]
) -> tuple[int, dict[str, str], str]:
    body = urlencode(fields, doseq=True).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    status, response_headers, raw = await http_request("POST", url, body=body, headers=headers)
    return status, response_headers, raw.decode()


# --- the data, before any server -------------------------------------------------------------


def test_the_demo_school_is_a_valid_roster_with_the_people_the_issue_asks_for() -> None:
    plan = validate(msgspec.convert(school.roster(), RosterIn))
    roles = [u.role for u in plan.users.values()]
    assert {role: roles.count(role) for role in set(roles)} == {
        "teacher": 6,
        "staff": 2,
        "student": 16,
        "parent": 16,
    }
    assert all(c.class_teacher_id for c in plan.classes.values()) and len(plan.classes) == 2
    assert len(plan.subjects) >= 6
    # One parent has two children in two classes.
    kids_of: dict[str, set[str]] = {}
    for parent, kid in plan.parents:
        kids_of.setdefault(parent, set()).add(school.CLASS_OF[kid].id)
    assert {"7a", "8b"} in kids_of.values()
    # Every class learns every subject in a group, English in two.
    for cls in plan.classes.values():
        subjects = [g.subject_id for g in plan.groups.values() if g.class_id == cls.id]
        assert set(subjects) == set(plan.subjects) and subjects.count("eng") == 2


@pytest.mark.parametrize(
    "today", [dt.date(2026, 11, 28), dt.date(2026, 12, 2), dt.date(2027, 1, 4)]
)
def test_the_week_around_today_has_no_teacher_in_two_places(today: dt.date) -> None:
    week = school.schedule(today)
    assert (week["from"], week["to"]) == (
        (today - dt.timedelta(days=3)).isoformat(),
        (today + dt.timedelta(days=3)).isoformat(),
    )
    zone = zoneinfo.ZoneInfo(school.TIMEZONE)
    busy: dict[tuple[str, str], str] = {}
    for lesson in week["lessons"]:
        starts = dt.datetime.fromisoformat(lesson["starts_at"])
        assert starts.utcoffset() == starts.astimezone(zone).utcoffset()
        assert today - dt.timedelta(days=3) <= starts.date() <= today + dt.timedelta(days=3)
        assert starts.weekday() < 5
        slot = (lesson["teacher_id"], lesson["starts_at"])
        assert slot not in busy, (lesson, busy[slot])
        busy[slot] = lesson["id"]
    assert len({lesson["id"] for lesson in week["lessons"]}) == len(week["lessons"])


def test_a_whole_school_week_gives_every_group_its_hours() -> None:
    thursday = dt.date(2026, 12, 3)
    week = school.schedule(thursday)
    assert (week["from"], week["to"]) == ("2026-11-30", "2026-12-06")
    hours: dict[str, int] = {}
    for lesson in week["lessons"]:
        hours[lesson["group_id"]] = hours.get(lesson["group_id"], 0) + 1
    per_subject = {"rus": 4, "lit": 3, "alg": 3, "geo": 2, "phys": 2, "hist": 3, "eng": 3}
    assert hours == {g.id: per_subject[g.subject_id] for g in school.GROUPS}


# --- the running demo ---------------------------------------------------------------------


async def test_the_block_prints_four_valid_phones_and_the_outbox(demo: Demo) -> None:
    text = "\n".join(demo.block)
    assert set(demo.phones) == set(EXPECTED_CHATS)
    assert len(set(demo.phones.values())) == 4
    assert str(demo.server.data_dir / "sms-outbox.jsonl") in text
    assert f"{demo.server.url}/demo-journal/" in text
    assert "зарегистрирован" in text and "уже был" not in text
    credentials = orjson.loads((demo.server.data_dir / CREDENTIALS_FILE).read_bytes())
    assert set(credentials) == {"journal_id", "api_token", "signing_secret"}
    assert credentials["journal_id"] in text and credentials["api_token"] not in text


async def test_the_printed_phones_sign_in_to_their_profiles_and_chats(demo: Demo) -> None:
    for name in demo.phones:
        client = await demo.client(name)
        try:
            profile = await client.profile()
            assert (
                f"{profile['last_name']} {profile['first_name']} {profile['middle_name']}" == name
            )
            await client.connect()
            chats = await client.list_chats()
            assert {c.title for c in chats} == EXPECTED_CHATS[name], name
            kinds = {c.title: c.kind for c in chats}
            assert kinds.get("7А класс", "class") == "class"
            assert kinds.get("Родители 7А", "parents") == "parents"
        finally:
            await client.close()


async def test_unread_messages_show_in_the_journals_list(demo: Demo) -> None:
    teacher = await demo.client("Иванова Мария Петровна")
    await teacher.connect()
    [parents] = [c for c in await teacher.list_chats() if c.title == "Родители 7А"]
    for text in ("Собрание в четверг в 18:00.", "Кабинет 21."):
        await teacher.post(parents.id, text)
    await teacher.close()
    _, _, page = await get(f"{demo.server.url}/demo-journal/people/p706")
    assert '<span class="unread" title="непрочитанных">2</span>' in page
    _, _, page = await get(f"{demo.server.url}/demo-journal/people/t01")
    assert 'class="unread"' not in page  # one's own messages are read


async def test_the_demo_journal_lists_people_and_a_persons_chats(demo: Demo) -> None:
    url = demo.server.url
    status, headers, home = await get(f"{url}/demo-journal/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for person in school.PEOPLE.values():
        assert person.full_name in home
    assert "+7 900 000-00-01" in home
    status, _, page = await get(f"{url}/demo-journal/people/s701")
    assert status == 200 and "Личные сообщения" in page and "+ Новый чат" in page
    for title in EXPECTED_CHATS["Алексеев Артём Дмитриевич"]:
        assert f'<span class="title">{title}</span>' in page
    assert "Учебный профиль привязан" in page
    status, _, page = await get(f"{url}/demo-journal/people/s702")
    assert "Привязать учебный профиль" in page and "Английский язык 7А (группа 1)" in page
    assert (await get(f"{url}/demo-journal/people/nobody"))[0] == 404
    # The journal's token and secret never reach the browser.
    credentials = orjson.loads((demo.server.data_dir / CREDENTIALS_FILE).read_bytes())
    for secret in (credentials["api_token"], credentials["signing_secret"]):
        assert secret not in home and secret not in page


async def test_a_teacher_makes_chats_from_the_demo_journal_and_a_student_may_not(
    demo: Demo,
) -> None:
    url = f"{demo.server.url}/demo-journal/people"
    status, headers, _ = await post_form(
        f"{url}/t03/chats", {"kind": "custom", "title": "Олимпиада", "member": ["s701", "s801"]}
    )
    assert status == 303
    location = headers["location"]
    assert location.startswith("/demo-journal/people/t03?created=")
    _, _, page = await get(demo.server.url + location)
    assert "Чат «Олимпиада» создан." in page
    assert '<span class="title">Олимпиада</span>' in page and "3 участника" in page
    status, headers, _ = await post_form(f"{url}/t03/chats", {"kind": "subject", "pair": "8b:geo"})
    assert status == 303
    _, _, page = await get(demo.server.url + headers["location"])
    assert page.count('<span class="title">Геометрия 8Б</span>') == 2  # the roster's and this
    # The student reached the chat in Parta (linked), the other is on its roster.
    _, _, student = await get(f"{url}/s701")
    assert '<span class="title">Олимпиада</span>' in student
    status, _, form = await post_form(f"{url}/t03/chats", {"kind": "custom", "title": " "})
    assert status == 422 and "Напишите название чата" in form
    status, _, refusal = await get(f"{url}/s701/chats/new")
    assert status == 403 and "создают учителя и сотрудники" in refusal
    status, _, refusal = await post_form(f"{url}/s701/chats", {"kind": "custom", "title": "Х"})
    assert status == 403 and "создают учителя и сотрудники" in refusal


async def test_the_link_button_sends_a_signed_assertion_to_parta(demo: Demo) -> None:
    status, headers, _ = await post_form(f"{demo.server.url}/demo-journal/people/s703/link", {})
    assert status == 303 and headers["location"].startswith("/api/v1/link?assertion=")
    status, headers, _ = await get(demo.server.url + headers["location"])
    assert status == 303 and headers["location"].startswith("/link/")
    pending = headers["location"].removeprefix("/link/")
    view = await Client(demo.server.url).http_json("GET", f"/api/v1/links/pending/{pending}")
    assert view["person"]["last_name"] == "Васильев"
    assert view["journal"]["name"] == "Демо-журнал"


async def test_linking_started_in_parta_goes_through_the_demo_journal(demo: Demo) -> None:
    phone = next(_other_phones)
    client = await sign_in(demo.server, phone)
    await client.create_profile(
        last_name="Белова", first_name="София", birth_date="2012-08-23", sex="female"
    )
    [journal] = [
        j
        for r in (await client.http_json("GET", "/api/v1/regions"))["regions"]
        for j in r["journals"]
        if j["name"] == "Демо-журнал"
    ]
    status, headers, raw = await http_request(
        "POST",
        f"{demo.server.url}/api/v1/links/start",
        body=orjson.dumps({"journal_id": journal["id"]}),
        headers={"authorization": f"Bearer {client.token}", "content-type": "application/json"},
    )
    assert status == 200, raw
    start = orjson.loads(raw)["url"]
    state_cookie = headers["set-cookie"].split(";")[0]
    assert start.startswith(f"{demo.server.url}/demo-journal/link?")
    status, _, page = await get(start)
    assert status == 200 and "Вход в демо-журнал" in page and "Белова София Андреевна" in page
    query = parse_qs(urlsplit(start).query)
    status, headers, _ = await post_form(
        f"{demo.server.url}/demo-journal/link",
        {"user_id": "s702", "state": query["state"][0], "return_url": query["return_url"][0]},
    )
    assert status == 303
    back = headers["location"]
    assert back.startswith(f"{demo.server.url}/api/v1/link?assertion=")
    status, headers, page = await get(back, {"cookie": state_cookie})
    assert status == 303, page
    pending = headers["location"].removeprefix("/link/").removesuffix("?from=parta")
    done = await client.http_json("POST", f"/api/v1/links/pending/{pending}/confirm")
    assert done["return_url"] == f"{demo.server.url}/demo-journal/people/s702?from=parta"
    _, _, page = await get(done["return_url"])
    assert "Вы вернулись из Parta" in page and "Учебный профиль привязан" in page
    await client.connect()
    assert "7А класс" in {c.title for c in await client.list_chats()}
    await client.close()
    # The journal's link page sends browsers back to Parta's landing only.
    bad = {"state": "x", "return_url": "https://evil.example/api/v1/link"}
    assert (await get(f"{demo.server.url}/demo-journal/link?{urlencode(bad)}"))[0] == 400


async def test_without_demo_there_is_no_demo_journal(server: RunningServer) -> None:
    # GETs fall through to the web client, which routes its own paths.
    _, _, page = await get(f"{server.url}/demo-journal/")
    assert "Демо-журнал" not in page and "Личные сообщения" not in page
    assert (await post_form(f"{server.url}/demo-journal/link", {"user_id": "t01"}))[0] == 404


# --- a second start --------------------------------------------------------------------------


async def test_a_second_start_with_demo_changes_nothing(tmp_path: Path) -> None:
    first = start_demo(tmp_path)
    try:
        credentials = (tmp_path / CREDENTIALS_FILE).read_bytes()
        clients = {name: await sign_in(first.server, phone) for name, phone in first.phones.items()}
        before = {}
        for name, client in clients.items():
            await client.connect()
            before[name] = sorted((c.id, c.title) for c in await client.list_chats())
            await client.close()
        _, _, home_before = await get(f"{first.server.url}/demo-journal/")
    finally:
        stop_server(first.server)
    # The same address: the journal's link URL (for the way back from Parta) stays valid.
    again = start_demo(tmp_path, "--port", str(first.server.port))
    try:
        text = "\n".join(again.block)
        assert "уже был зарегистрирован" in text and "Ростер: без изменений." in text
        assert again.phones == first.phones and "учётная запись без привязки" not in text
        assert (tmp_path / CREDENTIALS_FILE).read_bytes() == credentials
        regions = (await Client(again.server.url).http_json("GET", "/api/v1/regions"))["regions"]
        assert [len(r["journals"]) for r in regions] == [1]
        for name, client in clients.items():
            reopened = Client(again.server.url, client.token)
            await reopened.connect()
            assert sorted((c.id, c.title) for c in await reopened.list_chats()) == before[name]
            await reopened.close()
        _, _, home_after = await get(f"{again.server.url}/demo-journal/")
        assert home_after == home_before
    finally:
        log = stop_server(again.server)
    assert "Traceback" not in log, log
