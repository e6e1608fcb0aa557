"""The lesson screen in Chromium: a teacher and two students of the demo school in one
lesson, scheduled through the Journal API. Waiting until the teacher starts it; video through
the SFU (frames decoded by the receivers); raised hands in order; host controls (ask to
unmute, mute, stop a screen share, co-host, remove, recording); grid, speaker and minimised
views; panels (participants, chat, settings) and phone sheets; screen sharing by permission;
breakout rooms by dragging and at random, with a timer, a broadcast, a call for the teacher, a
visit and a move; the shared whiteboard; a dropped connection that joins again; devices that
refuse; the end of the lesson for everyone.

Runs with a media worker; like every browser test, inside a loopback-only network namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from protocol.client import http_request
from server.api.sessions import COOKIE
from server.demo.journal_api import assertion
from server.demo.seed import CREDENTIALS_FILE
from tests.browser.conftest import screenshot_path
from tests.integration.conftest import start_server, stop_cleanly
from tests.integration.test_demo import Demo, printed_phones, read_demo_block

TEACHER = "Иванова Мария Петровна"  # t01, class teacher of 7А
STUDENT = "Алексеев Артём Дмитриевич"  # s701, linked by the demo
CLASS_CHAT = "7А класс"
# Белова София Андреевна (s702) is linked here: the demo links one student only.
OTHER_STUDENT_ID = "s702"

# Every RTCPeerConnection and WebSocket the page makes, so a test can read statistics or
# drop the connection.
RECORD_PEERS = """
(() => {
  const NativePeer = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = class extends NativePeer {
    constructor(...args) { super(...args); window.__peers.push(this); }
  };
  const NativeSocket = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends NativeSocket {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""
# Frames decoded so far for the video an element shows (-1: no playing video there). Every
# inbound-rtp report of its receiver counts, and the caller looks for an increase.
FRAMES_OF = """
async (selector) => {
  const video = document.querySelector(selector);
  const track = video && video.videoWidth > 0 && video.srcObject.getVideoTracks()[0];
  if (!track) return -1;
  for (const pc of window.__peers) {
    for (const receiver of pc.getReceivers()) {
      if (receiver.track !== track) continue;
      let frames = 0;
      (await receiver.getStats()).forEach((report) => {
        if (report.type === "inbound-rtp") frames += report.framesDecoded || 0;
      });
      return frames;
    }
  }
  return -1;
}
"""
# How many pixels of the whiteboard have something drawn on them.
INKED = """
() => {
  const canvas = document.querySelector(".board-canvas");
  if (!canvas || !canvas.width) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
  return inked;
}
"""


@dataclass
class School:
    demo: Demo
    journal_id: str
    api_token: str
    signing_secret: str
    # person → (session token, account id), once signed in
    people: dict[str, tuple[str, int]]

    @property
    def url(self) -> str:
        return self.demo.server.url

    async def journal(self, method: str, path: str, body: object = None) -> Any:
        status, _, raw = await http_request(
            method,
            self.url + path,
            body=b"" if body is None else json.dumps(body).encode(),
            headers={
                "authorization": f"Bearer {self.api_token}",
                "content-type": "application/json",
            },
        )
        assert status < 300, (status, raw)
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    data_dir = tmp_path_factory.mktemp("lessons")
    # A host may start a lesson days early: the tests schedule theirs for tomorrow.
    server = start_server(
        data_dir, "--demo", env={"PARTA_CALL_EARLY_START_S": str(3 * 86_400)}, sfu_workers=1
    )
    block = read_demo_block(server)
    credentials = json.loads((data_dir / CREDENTIALS_FILE).read_text())
    yield School(
        Demo(server, block, printed_phones(block)),
        credentials["journal_id"],
        credentials["api_token"],
        credentials["signing_secret"],
        {},
    )
    stop_cleanly(server)


async def signed_in(school: School, name: str) -> tuple[str, int]:
    """A printed person's session token and account id."""
    if name not in school.people:
        client = await school.demo.client(name)
        profile = await client.http_json("GET", "/api/v1/profile")
        assert client.token is not None
        school.people[name] = (client.token, profile["account_id"])
    return school.people[name]


async def second_student(school: School) -> tuple[str, int]:
    """Белова: a new account in Parta, linked to her journal person (the journal's assertion)."""
    name = "Белова София Андреевна"
    if name in school.people:
        return school.people[name]
    token = assertion(
        school.journal_id, school.signing_secret, OTHER_STUDENT_ID, school.url + "/demo-journal/"
    )
    status, headers, _ = await http_request("GET", f"{school.url}/api/v1/link?assertion={token}")
    assert status == 303, headers
    pending = headers["location"].rsplit("/", 1)[1]
    client = await school.demo.server.sign_in("Белова", "София")
    await client.http_json("POST", f"/api/v1/links/pending/{pending}/confirm")
    profile = await client.http_json("GET", "/api/v1/profile")
    assert client.token is not None
    school.people[name] = (client.token, profile["account_id"])
    return school.people[name]


async def new_lesson(school: School, title: str) -> int:
    """A lesson in 7А's class chat tomorrow, published (its card is in the chat)."""
    chats = await school.journal("GET", "/api/v1/users/t01/chats")
    [chat] = [c for c in chats["chats"] if c["title"] == CLASS_CHAT]
    tomorrow = dt.datetime.now(ZoneInfo("Europe/Moscow")).date() + dt.timedelta(days=1)
    starts = dt.datetime.combine(tomorrow, dt.time(9, 0), ZoneInfo("Europe/Moscow"))
    lesson = await school.journal(
        "POST",
        f"/api/v1/chats/{chat['id']}/calls?as=t01",
        {"title": title, "starts_at": starts.isoformat(), "duration_minutes": 45},
    )
    await school.journal("POST", f"/api/v1/calls/{lesson['id']}/publish?as=t01")
    return int(lesson["id"])


@dataclass
class Person:
    account_id: int
    context: BrowserContext
    page: Page


async def open_as(
    browser: Browser, school: School, who: tuple[str, int], lesson: int, phone: bool = False
) -> Person:
    token, account_id = who
    viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 800}
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale="ru-RU",
        timezone_id="Europe/Moscow",
        is_mobile=phone,
        has_touch=phone,
    )
    await context.add_cookies([{"name": COOKIE, "value": token, "url": school.url}])
    await context.add_init_script(RECORD_PEERS)
    page = await context.new_page()
    await page.goto(f"{school.url}/call/{lesson}")
    return Person(account_id, context, page)


async def started(teacher: Person) -> None:
    await teacher.page.get_by_role("button", name="Начать урок").click()
    await expect(teacher.page.get_by_role("navigation", name="Управление уроком")).to_be_visible()


async def decodes(viewer: Person, selector: str) -> None:
    """``viewer`` is decoding the video ``selector`` shows now (its frame count grows)."""
    before = -1
    for _ in range(60):
        frames = await viewer.page.evaluate(FRAMES_OF, selector)
        if before >= 0 and frames > before:
            return
        before = frames
        await viewer.page.wait_for_timeout(500)
    raise AssertionError(f"{viewer.account_id} decodes no video in {selector}")


async def sees_video(viewer: Person, of: Person) -> None:
    """``viewer`` decodes the camera in ``of``'s tile (big, small, or minimised)."""
    await decodes(viewer, f":is(.call, .call-mini) [data-tile='p{of.account_id}'] video")


@pytest.fixture
async def lesson_people(
    school: School, browser: Browser
) -> AsyncIterator[tuple[int, Person, Person, Person]]:
    """A live lesson: the teacher started it, both students are in."""
    lesson = await new_lesson(school, "Классный час")
    teacher = await open_as(browser, school, await signed_in(school, TEACHER), lesson)
    await started(teacher)
    students = [
        await open_as(browser, school, await signed_in(school, STUDENT), lesson),
        await open_as(browser, school, await second_student(school), lesson),
    ]
    for student in students:
        await expect(controls(student)).to_be_visible()
    yield lesson, teacher, students[0], students[1]
    for person in (teacher, *students):
        await person.context.close()
    await school.journal("POST", f"/api/v1/calls/{lesson}/end?as=t01")


def controls(person: Person) -> Any:
    return person.page.get_by_role("navigation", name="Управление уроком")


def tile(person: Person, of: Person) -> Any:
    return person.page.locator(f".call [data-tile='p{of.account_id}']")


@pytest.mark.timeout(240)
async def test_students_wait_then_see_the_teacher_raise_hands_and_the_lesson_ends(
    school: School, browser: Browser
) -> None:
    lesson = await new_lesson(school, "Математика: дроби")
    first = await open_as(browser, school, await signed_in(school, STUDENT), lesson)
    second = await open_as(browser, school, await second_student(school), lesson, phone=True)
    for student in (first, second):
        waiting = student.page.get_by_role("heading", name="Урок ещё не начался")
        await expect(waiting).to_be_visible()
        await expect(student.page.locator("main")).to_contain_text("Математика: дроби")
    await second.page.screenshot(path=screenshot_path("call-waiting-phone"))

    # The teacher starts it; the waiting pages open the lesson by themselves.
    teacher = await open_as(browser, school, await signed_in(school, TEACHER), lesson)
    await started(teacher)
    for student in (first, second):
        await expect(controls(student)).to_be_visible(timeout=20_000)
        await sees_video(student, teacher)
    await sees_video(teacher, first)
    await sees_video(teacher, second)
    await expect(teacher.page.locator(".call .tile")).to_have_count(3)
    await teacher.page.screenshot(path=screenshot_path("call-grid"))

    # Hands go up in order; the teacher sees them on the tiles and first in the list.
    await controls(second).get_by_role("button", name="Поднять руку").click()
    await controls(first).get_by_role("button", name="Поднять руку").click()
    await expect(tile(teacher, second).locator(".call-badge.hand")).to_have_text("1")
    await expect(tile(teacher, first).locator(".call-badge.hand")).to_have_text("2")
    await expect(controls(first).get_by_role("button", name="Опустить руку")).to_have_attribute(
        "aria-pressed", "true"
    )
    await controls(teacher).get_by_role("button", name="Участники").click()
    panel = teacher.page.get_by_role("complementary", name="Участники")
    await expect(panel).to_be_visible()
    rows = panel.locator(".call-people > li")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("Белова")
    await expect(rows.nth(1)).to_contain_text("Алексеев")
    await expect(rows.nth(2)).to_contain_text("Иванова")
    await teacher.page.screenshot(path=screenshot_path("call-participants"))

    # Host controls: ask to unmute, the student agrees, then the teacher mutes them.
    await panel.get_by_role("button", name="Действия: Алексеев Артём").click()
    await panel.get_by_role("button", name="Попросить включить микрофон").click()
    await first.page.get_by_role("button", name="Включить микрофон").click()
    await expect(controls(first).get_by_role("button", name="Микрофон")).to_have_attribute(
        "aria-pressed", "true"
    )
    await panel.get_by_role("button", name="Выключить микрофон").click()
    await expect(controls(first).get_by_role("button", name="Микрофон")).to_have_attribute(
        "aria-pressed", "false"
    )
    await expect(first.page.locator(".call-notices")).to_contain_text(
        "Иванова Мария выключила ваш микрофон"
    )
    await panel.get_by_role("button", name="Опустить все руки").click()
    await expect(teacher.page.locator(".call .call-badge.hand")).to_have_count(0)
    await panel.get_by_role("button", name="Закрыть").click()

    # The speaker layout: a stage and a strip; a pinned tile stays on the stage.
    await controls(teacher).get_by_role("button", name="Докладчик").click()
    await expect(teacher.page.locator(".call .stage .tile")).to_have_count(1)
    await expect(teacher.page.locator(".call .strip .tile")).to_have_count(2)
    await tile(teacher, second).get_by_role("button", name="Закрепить: Белова София").click()
    await expect(teacher.page.locator(".call .stage .tile")).to_have_attribute(
        "data-tile", f"p{second.account_id}"
    )
    await sees_video(teacher, second)
    await teacher.page.screenshot(path=screenshot_path("call-speaker"))
    await second.page.screenshot(path=screenshot_path("call-grid-phone"))
    # On a phone a panel is a sheet over the whole screen.
    await controls(second).get_by_role("button", name="Участники").click()
    sheet = second.page.get_by_role("complementary", name="Участники")
    await expect(sheet).to_be_visible()
    box = await sheet.bounding_box()
    assert box is not None and box["width"] == 390, box
    await second.page.screenshot(path=screenshot_path("call-participants-phone"))
    await sheet.get_by_role("button", name="Закрыть").click()

    # Minimised, the lesson goes on in a small window over the chat.
    await controls(first).get_by_role("button", name="Свернуть").click()
    mini = first.page.get_by_role("complementary", name="Урок «Математика: дроби»")
    await expect(mini).to_be_visible()
    await sees_video(first, teacher)
    await first.page.screenshot(path=screenshot_path("call-minimised"))
    await mini.get_by_role("button", name="Развернуть урок").click()
    await expect(controls(first)).to_be_visible()

    # The teacher ends it for everyone.
    await teacher.page.locator(".call-header").get_by_role("button", name="Завершить урок").click()
    await teacher.page.get_by_role("dialog").get_by_role("button", name="Завершить урок").click()
    for person in (first, second, teacher):
        await expect(person.page.get_by_role("heading", name="Урок завершён")).to_be_visible()
    for person in (first, second, teacher):
        await person.context.close()


@pytest.mark.timeout(240)
async def test_breakout_rooms_with_a_timer_a_broadcast_and_a_call_for_the_teacher(
    lesson_people: tuple[int, Person, Person, Person],
) -> None:
    _, teacher, first, second = lesson_people
    await controls(teacher).get_by_role("button", name="Комнаты").click()
    panel = teacher.page.get_by_role("complementary", name="Комнаты")
    await panel.get_by_label("Таймер, минут (необязательно)").fill("5")
    await expect(panel.get_by_label("Остальных распределить случайно")).to_be_checked()
    await panel.get_by_label("Название комнаты 1").fill("Первая группа")
    # Белова is dragged into the first room; Алексеев is left to chance.
    chip = panel.locator(".chip").filter(has_text="Белова София").locator("span")
    await chip.drag_to(panel.locator(".room-box[data-room='1']"))
    await expect(panel.get_by_label("Комната для: Белова София")).to_have_value("1")
    await teacher.page.screenshot(path=screenshot_path("call-breakout-setup"))
    await panel.get_by_role("button", name="Открыть комнаты").click()

    # Each sees their room and the countdown; in a room, only the people of that room.
    rooms = {}
    for student in (first, second):
        room = student.page.locator(".call-header .room-chip")
        await expect(room).to_be_visible()
        await expect(room.locator(".countdown")).to_have_text(re.compile(r"^4:[0-5]\d$"))
        rooms[student.account_id] = await room.evaluate("chip => chip.firstChild.textContent")
        await expect(student.page.locator(".call .tile")).to_have_count(1)
    assert rooms == {first.account_id: "Комната 2", second.account_id: "Первая группа"}, rooms
    await expect(panel.locator(".room-box")).to_have_count(3)
    await teacher.page.screenshot(path=screenshot_path("call-breakout"))

    await panel.get_by_label("Сообщение во все комнаты").fill("Через минуту возвращаемся")
    await panel.get_by_role("button", name="Отправить").click()
    for student in (first, second):
        await expect(student.page.locator(".call-notices")).to_contain_text(
            "Через минуту возвращаемся"
        )
    await first.page.get_by_role("button", name="Позвать учителя").click()
    help_notice = teacher.page.locator(".call-notice").filter(has_text="зовёт учителя")
    await expect(help_notice).to_contain_text("Алексеев Артём")
    await expect(help_notice).to_contain_text("Комната 2")
    await help_notice.get_by_role("button", name="Перейти").click()
    await expect(teacher.page.locator(".call-header .room-chip")).to_contain_text("Комната 2")
    await expect(first.page.locator(".call .tile")).to_have_count(2)
    await sees_video(first, teacher)
    await first.page.screenshot(path=screenshot_path("call-breakout-room"))

    # While the rooms run, the teacher moves Белова over.
    await panel.get_by_label("Комната для: Белова София").select_option(label="Комната 2")
    await expect(second.page.locator(".call-header .room-chip")).to_contain_text("Комната 2")
    await expect(first.page.locator(".call .tile")).to_have_count(3)
    await sees_video(first, second)

    await panel.get_by_role("button", name="Закрыть комнаты").click()
    await teacher.page.get_by_role("dialog").get_by_role("button", name="Закрыть комнаты").click()
    for person in (first, second, teacher):
        await expect(person.page.locator(".call-header .room-chip")).to_have_count(0)
        await expect(person.page.locator(".call .tile")).to_have_count(3)
    await sees_video(second, teacher)


@pytest.mark.timeout(240)
async def test_the_whiteboard_is_shared(lesson_people: tuple[int, Person, Person, Person]) -> None:
    _, teacher, first, second = lesson_people
    await controls(teacher).get_by_role("button", name="Доска").click()
    canvas = teacher.page.locator(".board-canvas")
    await expect(canvas).to_be_visible()
    box = await canvas.bounding_box()
    assert box is not None
    mouse = teacher.page.mouse

    async def drag(points: list[tuple[float, float]]) -> None:
        x, y = points[0]
        await mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        await mouse.down()
        for x, y in points[1:]:
            await mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        await mouse.up()

    # A stroke drawn slowly enough to be sent in several pieces, then a rectangle.
    await drag([(0.1 + i * 0.02, 0.3 + (i % 5) * 0.04) for i in range(30)])
    await teacher.page.get_by_role("button", name="Прямоугольник").click()
    await drag([(0.55, 0.2), (0.9, 0.6)])
    await teacher.page.get_by_role("button", name="Текст").click()
    await mouse.click(box["x"] + 0.1 * box["width"], box["y"] + 0.7 * box["height"])
    await teacher.page.get_by_label("Текст на доске").fill("Дроби: 1/2 + 1/4 = 3/4")
    await teacher.page.keyboard.press("Enter")

    await controls(first).get_by_role("button", name="Доска").click()
    await expect(first.page.locator(".board-canvas")).to_be_visible()
    drawn = 0
    for _ in range(40):
        drawn = await first.page.evaluate(INKED)
        if drawn > 2000:
            break
        await first.page.wait_for_timeout(250)
    assert drawn > 2000, drawn

    # The other student draws too, and the teacher sees it.
    before = await teacher.page.evaluate(INKED)
    await controls(second).get_by_role("button", name="Доска").click()
    student_canvas = second.page.locator(".board-canvas")
    sbox = await student_canvas.bounding_box()
    assert sbox is not None
    await second.page.get_by_role("button", name="Эллипс").click()
    await second.page.mouse.move(sbox["x"] + 0.2 * sbox["width"], sbox["y"] + 0.75 * sbox["height"])
    await second.page.mouse.down()
    await second.page.mouse.move(
        sbox["x"] + 0.45 * sbox["width"], sbox["y"] + 0.95 * sbox["height"], steps=5
    )
    await second.page.mouse.up()
    for _ in range(40):
        if await teacher.page.evaluate(INKED) > before:
            break
        await teacher.page.wait_for_timeout(250)
    assert await teacher.page.evaluate(INKED) > before
    await teacher.page.screenshot(path=screenshot_path("call-whiteboard"))

    # The eraser takes the whole stroke away, on every board.
    seen = await first.page.evaluate(INKED)
    await teacher.page.get_by_role("button", name="Ластик").click()
    await mouse.click(box["x"] + 0.1 * box["width"], box["y"] + 0.3 * box["height"])
    for _ in range(40):
        if await first.page.evaluate(INKED) < seen:
            break
        await first.page.wait_for_timeout(250)
    assert await first.page.evaluate(INKED) < seen

    await teacher.page.get_by_role("button", name="Очистить").click()
    await teacher.page.get_by_role("dialog").get_by_role("button", name="Очистить").click()
    for person in (teacher, first):
        for _ in range(40):
            if await person.page.evaluate(INKED) == 0:
                break
            await person.page.wait_for_timeout(250)
        assert await person.page.evaluate(INKED) == 0


@pytest.mark.timeout(240)
async def test_screen_sharing_by_permission_the_lesson_chat_and_devices(
    lesson_people: tuple[int, Person, Person, Person],
) -> None:
    _, teacher, first, second = lesson_people
    share = controls(first).get_by_role("button", name="Экран", exact=True)
    await expect(share).to_be_disabled()
    await controls(teacher).get_by_role("button", name="Участники").click()
    people = teacher.page.get_by_role("complementary", name="Участники")
    await people.get_by_role("button", name="Действия: Алексеев Артём").click()
    await people.get_by_role("button", name="Разрешить показ экрана").click()
    await expect(share).to_be_enabled()
    await share.click()
    await expect(share).to_have_attribute("aria-pressed", "true")

    # A screen takes the stage of everyone who sees it.
    for viewer in (teacher, second):
        stage = viewer.page.locator(".call .stage .tile.is-screen")
        await expect(stage).to_contain_text("Экран: Алексеев Артём")
        await decodes(viewer, ".call .stage .is-screen video")
    await teacher.page.screenshot(path=screenshot_path("call-screen-share"))

    # The teacher stops it, then forbids it again.
    await people.get_by_role("button", name="Остановить показ экрана").click()
    await expect(share).to_have_attribute("aria-pressed", "false")
    await expect(first.page.locator(".call-notices")).to_contain_text(
        "Иванова Мария остановила показ"
    )
    await expect(teacher.page.locator(".call .is-screen")).to_have_count(0)
    await people.get_by_role("button", name="Запретить показ экрана").click()
    await expect(share).to_be_disabled()

    # The lesson chat beside the video.
    await controls(second).get_by_role("button", name="Чат").click()
    chat = second.page.get_by_role("complementary", name="Чат")
    await chat.get_by_placeholder("Сообщение").fill("Можно вопрос про дроби?")
    await chat.get_by_role("button", name="Отправить").click()
    await controls(teacher).get_by_role("button", name="Чат").click()
    messages = teacher.page.get_by_role("complementary", name="Чат").locator(".call-messages")
    await expect(messages).to_contain_text("Можно вопрос про дроби?")
    await expect(messages).to_contain_text("Белова София")
    await teacher.page.screenshot(path=screenshot_path("call-chat"))

    # Recording: everyone sees the red sign while it lasts.
    await teacher.page.get_by_role("button", name="Начать запись").click()
    for person in (teacher, first, second):
        await expect(person.page.locator(".call-rec")).to_have_text("Идёт запись")
    await teacher.page.get_by_role("button", name="Остановить запись").click()
    await expect(second.page.locator(".call-rec")).to_have_count(0)

    # A co-host gets the host's controls.
    await controls(teacher).get_by_role("button", name="Участники").click()
    await people.get_by_role("button", name="Действия: Белова София").click()
    await people.get_by_role("button", name="Сделать соведущим").click()
    await expect(controls(second).get_by_role("button", name="Комнаты")).to_be_visible()
    await expect(second.page.get_by_role("button", name="Завершить урок")).to_be_visible()
    await expect(tile(teacher, second).locator(".call-role")).to_have_text("соведущий")
    await people.get_by_role("button", name="Снять соведущего").click()
    await expect(controls(second).get_by_role("button", name="Комнаты")).to_have_count(0)

    # Settings list the devices in use.
    await controls(first).get_by_role("button", name="Настройки").click()
    settings = first.page.get_by_role("complementary", name="Настройки")
    for device in ("Микрофон", "Камера"):
        await expect(settings.get_by_label(device)).to_be_enabled()
    await first.page.screenshot(path=screenshot_path("call-settings"))


@pytest.mark.timeout(180)
async def test_camera_off_and_on_a_dropped_connection_and_removal(
    lesson_people: tuple[int, Person, Person, Person],
) -> None:
    _, teacher, first, _ = lesson_people
    # The camera off (its light goes out) and on again, without a new offer.
    camera = controls(first).get_by_role("button", name="Камера")
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await expect(tile(teacher, first).locator(".call-avatar")).to_be_visible()
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "true")
    await sees_video(teacher, first)

    await sees_video(first, teacher)
    await first.page.evaluate("() => window.__sockets.at(-1).close()")
    # The server forgets a dropped connection's call; the page joins again by itself.
    await expect(first.page.locator(".call-header")).to_be_visible()
    for _ in range(40):
        if await first.page.evaluate("() => window.__sockets.length") > 1:
            break
        await first.page.wait_for_timeout(250)
    await sees_video(first, teacher)
    await sees_video(teacher, first)

    # Removed by the teacher: the page says so and does not join again.
    await controls(teacher).get_by_role("button", name="Участники").click()
    people = teacher.page.get_by_role("complementary", name="Участники")
    await people.get_by_role("button", name="Действия: Алексеев Артём").click()
    await people.get_by_role("button", name="Удалить из урока").click()
    await teacher.page.get_by_role("dialog").get_by_role("button", name="Удалить из урока").click()
    await expect(
        first.page.get_by_role("heading", name="Учитель удалил вас из урока")
    ).to_be_visible()
    await expect(tile(teacher, first)).to_have_count(0)


DENY_DEVICES = """
(() => {
  // A camera another program holds, a microphone the person refused.
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const name = constraints.video ? "NotReadableError" : "NotAllowedError";
    throw new DOMException("refused in the test", name);
  };
})();
"""


@pytest.mark.timeout(180)
async def test_without_camera_and_microphone_a_student_is_told_why_and_still_takes_part(
    school: School, browser: Browser
) -> None:
    lesson = await new_lesson(school, "Без камеры")
    teacher = await open_as(browser, school, await signed_in(school, TEACHER), lesson)
    await started(teacher)
    token, account_id = await signed_in(school, STUDENT)
    context = await browser.new_context(locale="ru-RU", viewport={"width": 1024, "height": 768})
    await context.add_cookies([{"name": COOKIE, "value": token, "url": school.url}])
    await context.add_init_script(RECORD_PEERS)
    await context.add_init_script(DENY_DEVICES)
    page = await context.new_page()
    await page.goto(f"{school.url}/call/{lesson}")
    student = Person(account_id, context, page)
    notices = page.locator(".call-notices")
    await expect(notices).to_contain_text("Камера: устройство занято другой программой")
    await expect(notices).to_contain_text("Микрофон: доступ запрещён")
    await sees_video(student, teacher)
    await expect(tile(teacher, student).locator(".call-avatar")).to_have_text("АА")
    await controls(student).get_by_role("button", name="Поднять руку").click()
    await expect(tile(teacher, student).locator(".call-badge.hand")).to_have_text("1")
    await page.screenshot(path=screenshot_path("call-no-devices"))
    await page.get_by_role("button", name="Закрыть").first.click()
    await controls(student).get_by_role("button", name="Микрофон").click()
    await expect(notices).to_contain_text("Микрофон: доступ запрещён")
    await expect(controls(student).get_by_role("button", name="Микрофон")).to_have_attribute(
        "aria-pressed", "false"
    )
    await context.close()
    await teacher.context.close()
    await school.journal("POST", f"/api/v1/calls/{lesson}/end?as=t01")
