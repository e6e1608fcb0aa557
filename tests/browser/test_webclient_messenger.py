"""The messenger in Chromium, with the demo school: a teacher on a laptop and a student on a
phone talk live (reply, edit, react, pin, delete, poll, typing and read marks), send a photo
and a voice message recorded in the browser, make a chat and join it by an invite link,
open a direct chat, search; and a dropped connection resumes without losing or doubling
messages."""

from __future__ import annotations

import asyncio
import io
import math
import re
import time
import wave
from collections.abc import AsyncIterator, Iterator

import PIL.Image
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from protocol.messages import ChatHistory, HistoryResult
from server.api.sessions import COOKIE
from tests.browser.conftest import screenshot_path
from tests.integration.conftest import stop_cleanly
from tests.integration.test_demo import Demo, start_demo

TEACHER = "Иванова Мария Петровна"
STUDENT = "Алексеев Артём Дмитриевич"
CLASS = "7А класс"
SUBJECT = "Русский язык 7А"
# Short, so that editing an old message is refused within the test.
EDIT_WINDOW_S = 25
LAPTOP: ViewportSize = {"width": 1024, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 800}
# Messages in a chat with a history of several pages (the client asks for 50 at a time).
HISTORY = 130
SCROLL_TO_TOP = "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }"
# What each page reported as an error (uncaught exceptions, console errors).
ERRORS: dict[Page, list[str]] = {}

# Lets a test cut the page's WebSocket and keep new ones from connecting (port 9 refuses)
# until it is restored: the client must reconnect and resume by itself.
SOCKET_SWITCH = """
(() => {
  const Native = window.WebSocket;
  const live = new Set();
  let cut = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(cut ? url.replace(/:\\d+\\//, ":9/") : url, protocols);
      live.add(this);
      this.addEventListener("close", () => live.delete(this));
    }
  };
  window.__cut = () => { cut = true; for (const s of live) s.close(); };
  window.__restore = () => { cut = false; };
})();
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PARTA_EDIT_WINDOW_S", str(EDIT_WINDOW_S))
        running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    stop_cleanly(running.server)


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    yield made
    for context in made:
        await context.close()


async def open_as(
    demo: Demo,
    browser: Browser,
    contexts: list[BrowserContext],
    name: str,
    viewport: ViewportSize,
    init_script: str | None = None,
) -> Page:
    """A page signed in as a demo person (their session cookie), on the chat list."""
    client = await demo.client(name)
    context = await browser.new_context(viewport=viewport, locale="ru-RU")
    contexts.append(context)
    await context.add_cookies(
        [{"name": COOKIE, "value": str(client.token), "url": demo.server.url}]
    )
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    errors = ERRORS[page] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    await page.goto(demo.server.url + "/")
    await expect(page.get_by_role("heading", name="Чаты")).to_be_visible()
    return page


def row(page: Page, title: str):
    chat_list = page.get_by_role("list", name="Список чатов")
    return chat_list.get_by_role("link").filter(has=page.locator(".chat-title", has_text=title))


def message(page: Page, text: str):
    """Messages whose own text (not a quoted one) has ``text``."""
    return page.locator("article.msg").filter(has=page.locator(":scope > p.text", has_text=text))


async def open_chat(page: Page, title: str) -> None:
    await row(page, title).click()
    await expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()


async def act(page: Page, text: str, action: str) -> None:
    """Open a message's actions and choose one."""
    bubble = message(page, text).last
    await bubble.get_by_role("button", name="Действия с сообщением").click()
    await (
        bubble.get_by_role("group", name="Действия с сообщением")
        .get_by_role("button", name=action, exact=True)
        .click()
    )


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Сообщение", exact=True)
    await box.fill(text)
    await box.press("Enter")
    # Sent: the server's copy replaced the one on its way.
    await expect(message(page, text).and_(page.locator(":not(.pending)")).last).to_be_visible()


def no_errors(*pages: Page) -> None:
    for page in pages:
        # Connections to the refusing port while cut off are meant to fail.
        errors = [e for e in ERRORS.pop(page) if "ws://127.0.0.1:9/" not in e]
        assert errors == [], errors


async def test_two_people_talk_live(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    teacher = await open_as(demo, browser, contexts, TEACHER, LAPTOP)
    student = await open_as(demo, browser, contexts, STUDENT, PHONE)

    # The school's chats come first; every chat of the student is one.
    await expect(row(student, CLASS)).to_be_visible()
    await expect(student.locator(".chat-row .tag").first).to_have_text("школа")
    await student.screenshot(path=screenshot_path("messenger-chat-list-phone"), full_page=True)

    await open_chat(teacher, CLASS)
    await send(teacher, "Завтра экскурсия в музей")
    # Live: the student's list counts it and shows it.
    await expect(row(student, CLASS).get_by_label("непрочитанных: 1")).to_be_visible()
    await expect(row(student, CLASS)).to_contain_text("Иванова Мария: Завтра экскурсия в музей")

    await open_chat(student, CLASS)
    await expect(message(student, "Завтра экскурсия в музей")).to_be_visible()
    # Read: the teacher's message gets its read mark, the counter is gone.
    await expect(message(teacher, "Завтра экскурсия").get_by_label("Прочитано")).to_be_visible()

    # Typing shows under the chat's name.
    await student.get_by_label("Сообщение", exact=True).press_sequentially("Во ск")
    await expect(teacher.locator(".chat-head")).to_contain_text("Алексеев Артём печатает…")

    # Reply.
    await student.get_by_label("Сообщение", exact=True).fill("")
    await act(student, "Завтра экскурсия в музей", "Ответить")
    await expect(student.locator(".composer-context")).to_contain_text("Ответ Иванова Мария")
    await send(student, "Во сколько сбор?")
    replied_at = time.monotonic()
    reply = message(teacher, "Во сколько сбор?")
    await expect(reply.locator(".quote")).to_contain_text("Завтра экскурсия в музей")

    # Edit: the other side sees the new text, marked as edited.
    await act(teacher, "Завтра экскурсия в музей", "Изменить")
    box = teacher.get_by_label("Сообщение", exact=True)
    await expect(box).to_have_value("Завтра экскурсия в музей")
    await box.fill("Завтра экскурсия в музей, сбор в 9:00")
    await box.press("Enter")
    edited = message(student, "сбор в 9:00").first
    await expect(edited).to_contain_text("изменено")

    # React: the count and who reacted.
    await act(student, "сбор в 9:00", "Реакция 👍")
    await expect(
        message(teacher, "сбор в 9:00").first.get_by_role("button", name="👍 1: Алексеев Артём")
    ).to_be_visible()

    # Pin (the class teacher is an admin of the class chat): a bar on both sides.
    await act(teacher, "сбор в 9:00", "Закрепить")
    await expect(student.locator(".pinned-bar")).to_contain_text("Закреплено: Завтра экскурсия")
    await expect(
        student.locator(".service").filter(has_text="Иванова Мария закрепила сообщение")
    ).to_be_visible()

    # Delete for everyone.
    await send(student, "Ой, не сюда")
    await expect(message(teacher, "Ой, не сюда")).to_be_visible()
    await act(student, "Ой, не сюда", "Удалить у всех")
    await student.get_by_role("button", name="Да, удалить").click()
    await expect(message(teacher, "Ой, не сюда")).to_have_count(0)
    await expect(teacher.locator("article.msg .deleted").last).to_have_text("Сообщение удалено")

    # Shift+Enter starts a new line; Enter sends.
    box = student.get_by_label("Сообщение", exact=True)
    await box.type("Первая строка")
    await box.press("Shift+Enter")
    await box.type("вторая строка")
    await box.press("Enter")
    await expect(message(teacher, "вторая строка").locator(".text")).to_have_text(
        "Первая строка\nвторая строка"
    )

    # A poll: made, voted in, its result seen live, closed.
    await teacher.get_by_role("button", name="Создать опрос").click()
    form = teacher.get_by_role("form", name="Новый опрос")
    await form.get_by_label("Вопрос").fill("Куда поедем в мае?")
    await form.get_by_label("Вариант 1").fill("В музей")
    await form.get_by_label("Вариант 2").fill("В парк")
    await form.get_by_role("button", name="Создать опрос").click()
    poll = student.locator("fieldset.poll").filter(has_text="Куда поедем в мае?")
    await poll.get_by_role("button", name="В парк: 0%").click()
    teacher_poll = teacher.locator("fieldset.poll").filter(has_text="Куда поедем в мае?")
    await expect(teacher_poll.get_by_role("button", name="В парк: 100%")).to_be_visible()
    await expect(teacher_poll).to_contain_text("1 голос")
    await teacher_poll.get_by_role("button", name="Закрыть опрос").click()
    await expect(poll).to_contain_text("Опрос закрыт")
    await expect(poll.get_by_role("button", name="В музей: 0%")).to_be_disabled()

    await teacher.screenshot(path=screenshot_path("messenger-chat-laptop"))
    await student.screenshot(path=screenshot_path("messenger-chat-phone"))

    # The server's rules stand, and its refusal is shown: too late to edit.
    await asyncio.sleep(max(0.0, replied_at + EDIT_WINDOW_S + 1 - time.monotonic()))
    await act(student, "Во сколько сбор?", "Изменить")
    box = student.get_by_label("Сообщение", exact=True)
    # The composer takes the old text after a render: typing before that would be replaced.
    await expect(box).to_have_value("Во сколько сбор?")
    await box.fill("Во сколько сбор у школы?")
    await box.press("Enter")
    await expect(student.get_by_role("alert")).to_contain_text(
        "Изменить уже нельзя: прошло слишком много времени"
    )
    no_errors(teacher, student)


def _wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))
        )
        sound.writeframes(b"".join(x.to_bytes(2, "little", signed=True) for x in samples))
    return out.getvalue()


def _png(width: int = 640, height: int = 480) -> bytes:
    picture = PIL.Image.new("RGB", (width, height), (30, 110, 200))
    for x in range(0, width, 40):
        for y in range(height):
            picture.putpixel((x, y), (250, 250, 250))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


async def test_a_photo_and_a_voice_message(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    teacher = await open_as(demo, browser, contexts, TEACHER, LAPTOP)
    student = await open_as(demo, browser, contexts, STUDENT, PHONE)
    await open_chat(teacher, SUBJECT)
    await open_chat(student, SUBJECT)

    async with teacher.expect_file_chooser() as chooser:
        await teacher.get_by_role("button", name="Прикрепить файлы").click()
    await (await chooser.value).set_files(
        files=[{"name": "доска.png", "mimeType": "image/png", "buffer": _png()}]
    )
    await expect(teacher.get_by_label("доска.png: готово")).to_be_attached()
    await teacher.get_by_label("Сообщение", exact=True).fill("Задание на доске")
    await teacher.get_by_role("button", name="Отправить").click()

    photo = message(student, "Задание на доске").get_by_role(
        "button", name="Фото доска.png: открыть"
    )
    await expect(photo).to_be_visible()
    thumbnail = photo.locator("img")
    assert (await thumbnail.get_attribute("src") or "").endswith("/thumbnail")
    await student.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await thumbnail.element_handle()
    )
    await photo.click()
    viewer = student.get_by_role("dialog", name="Фото доска.png")
    await expect(viewer).to_be_visible()
    full = viewer.get_by_role("img", name="доска.png")
    await student.wait_for_function(
        "img => img.complete && img.naturalWidth === 640", arg=await full.element_handle()
    )
    await student.screenshot(path=screenshot_path("messenger-photo-viewer-phone"))
    await student.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()

    # A sound file plays in a player of its own.
    async with student.expect_file_chooser() as chooser:
        await student.get_by_role("button", name="Прикрепить файлы").click()
    await (await chooser.value).set_files(
        files=[{"name": "гласные.wav", "mimeType": "audio/wav", "buffer": _wav()}]
    )
    await expect(student.get_by_label("гласные.wav: готово")).to_be_attached()
    await student.get_by_role("button", name="Отправить").click()
    player = teacher.locator("figure.audio").filter(has_text="гласные.wav").locator("audio")
    await expect(player).to_be_visible()
    await teacher.wait_for_function(
        "audio => audio.readyState >= 1 && audio.duration > 0.9", arg=await player.element_handle()
    )

    # A voice message recorded from the (fake) microphone.
    await student.get_by_role("button", name="Записать голосовое сообщение").click()
    await expect(student.get_by_role("status").filter(has_text="Идёт запись")).to_be_visible()
    await student.wait_for_timeout(2500)
    await student.get_by_role("button", name="Отправить запись").click()

    voice = teacher.get_by_role("group", name="Голосовое сообщение").last
    await expect(voice).to_be_visible()
    assert await voice.locator(".bars i").count() == 64
    await voice.get_by_role("button", name="Слушать").click()
    await expect(voice.get_by_role("button", name="Пауза")).to_be_visible()
    await teacher.wait_for_function(
        "audio => audio.currentTime > 0.3", arg=await voice.locator("audio").element_handle()
    )
    await teacher.screenshot(path=screenshot_path("messenger-attachments-laptop"))
    no_errors(teacher, student)


async def test_a_new_chat_invite_direct_chat_and_search(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    teacher = await open_as(demo, browser, contexts, TEACHER, LAPTOP)
    student = await open_as(demo, browser, contexts, STUDENT, PHONE)

    await teacher.get_by_role("link", name="+ Новый чат").click()
    await teacher.get_by_label("Название").fill("Олимпиадная группа")
    await teacher.get_by_role("button", name="Создать чат").click()
    await expect(teacher.get_by_role("heading", name="Олимпиадная группа", level=1)).to_be_visible()
    await expect(teacher.locator(".service")).to_contain_text("Чат «Олимпиадная группа» создан")
    await send(teacher, "Задача про равнобедренные треугольники")

    await teacher.get_by_role("link", name="О чате").click()
    await expect(teacher.get_by_role("heading", name="Олимпиадная группа")).to_be_visible()
    await teacher.get_by_role("button", name="Создать ссылку").click()
    link = await teacher.get_by_label("Ссылка-приглашение").input_value()
    assert link.startswith(f"{demo.server.url}/join/")
    qr = teacher.get_by_role("img", name="QR-код ссылки-приглашения")
    await teacher.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await qr.element_handle()
    )

    await student.goto(link)
    await expect(student.get_by_role("heading", name="Приглашение в чат")).to_be_visible()
    await expect(student.locator("main")).to_contain_text("в чат «Олимпиадная группа»")
    await student.screenshot(path=screenshot_path("messenger-join-phone"))
    await student.get_by_role("button", name="Вступить в чат").click()
    await expect(
        student.get_by_role("heading", name="Вы в чате «Олимпиадная группа»")
    ).to_be_visible()
    await student.get_by_role("button", name="Открыть чат").click()
    await expect(message(student, "равнобедренные треугольники")).to_be_visible()

    # The teacher's info page follows: the invite was used, the student is a member.
    members = teacher.locator(".members li")
    await expect(members.filter(has_text=STUDENT)).to_contain_text("участник")
    await (
        members.filter(has_text=STUDENT)
        .get_by_role("button", name="Сделать администратором")
        .click()
    )
    await expect(members.filter(has_text=STUDENT)).to_contain_text("администратор")
    await teacher.get_by_label("Название чата").fill("Олимпиада по геометрии")
    await teacher.get_by_role("button", name="Переименовать").click()
    await expect(
        student.get_by_role("heading", name="Олимпиада по геометрии", level=1)
    ).to_be_visible()
    await expect(student.locator(".service").filter(has_text="Вы вступили в чат")).to_be_visible()
    await teacher.screenshot(path=screenshot_path("messenger-chat-info-laptop"), full_page=True)

    # Search finds the message by another word form and opens the chat at it.
    await student.get_by_role("link", name="К списку чатов").click()
    await student.get_by_role("searchbox").fill("треугольник")
    await student.get_by_role("button", name="Найти в сообщениях").click()
    result = student.locator("a.result").filter(has_text="равнобедренные треугольники")
    await expect(result).to_contain_text("Олимпиада по геометрии")
    await student.screenshot(path=screenshot_path("messenger-search-phone"))
    await result.click()
    found = message(student, "равнобедренные треугольники")
    await expect(found).to_have_class(re.compile(r"\bhighlight\b"))
    await expect(found).to_be_focused()

    # A direct chat from a member's entry.
    await student.get_by_role("link", name="О чате").click()
    await expect(student.locator(".members li").filter(has_text=TEACHER)).to_contain_text(
        "владелец"
    )
    await student.screenshot(path=screenshot_path("messenger-chat-info-phone"), full_page=True)
    await student.get_by_role("button", name=f"Написать: {TEACHER}").click()
    await expect(student.get_by_role("heading", name="Иванова Мария", level=1)).to_be_visible()
    await send(student, "Мария Петровна, можно вопрос по задаче?")
    await teacher.get_by_role("link", name="Чаты", exact=True).click()
    direct = row(teacher, "Алексеев Артём")
    await expect(direct).to_contain_text("Мария Петровна, можно вопрос по задаче?")
    await expect(direct.get_by_label("непрочитанных: 1")).to_be_visible()

    # A chat made with someone picked from the people one shares chats with: it appears
    # in their list at once.
    await teacher.get_by_role("link", name="+ Новый чат").click()
    await teacher.get_by_label("Название").fill("Кружок чтения")
    await teacher.get_by_label("Найти человека").fill("Алексеев")
    await teacher.get_by_label(STUDENT).check()
    await teacher.get_by_role("button", name="Создать чат").click()
    await expect(teacher.get_by_role("heading", name="Кружок чтения", level=1)).to_be_visible()
    await student.get_by_role("link", name="Чаты", exact=True).click()
    await expect(row(student, "Кружок чтения")).to_be_visible()
    await teacher.get_by_role("link", name="Чаты", exact=True).click()

    # Manual chats come after the school's.
    titles = await teacher.locator(".chat-row .chat-title").all_inner_texts()
    assert titles.index("Олимпиада по геометрии") > titles.index(f"{CLASS}школа")
    await teacher.screenshot(path=screenshot_path("messenger-chat-list-laptop"), full_page=True)
    no_errors(teacher, student)


async def test_a_long_history_loads_while_scrolling_up_and_search_jumps_into_it(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    teacher = await demo.client(TEACHER)
    await teacher.connect()
    try:
        [cls] = [c for c in await teacher.list_chats() if c.title == CLASS]
        [pupil] = [m for m in await teacher.members(cls.id) if m.last_name == "Алексеев"]
        chat = await teacher.create_chat("Архив задач", [pupil.account_id])
        for n in range(1, HISTORY + 1):
            text = "Задача про кенгуру" if n == 7 else f"Запись архива {n}"
            await teacher.post(chat.id, text)
    finally:
        await teacher.close()

    student = await open_as(demo, browser, contexts, STUDENT, PHONE)
    # Search opens the chat at a message far up its history: older pages load to reach it.
    await student.get_by_role("searchbox").fill("кенгуру")
    await student.get_by_role("button", name="Найти в сообщениях").click()
    await student.locator("a.result").filter(has_text="Задача про кенгуру").click()
    found = message(student, "Задача про кенгуру")
    await expect(found).to_be_focused()
    await expect(found).to_be_in_viewport()

    # Opened again, the chat shows where the reading stopped: the first unread message.
    await student.goto(student.url.split("?")[0])
    divider = student.get_by_text("Непрочитанные сообщения", exact=True)
    await expect(divider).to_be_in_viewport()
    first_unread = int(
        await student.locator(".unread-line + article.msg").get_attribute("data-seq") or 0
    )
    assert 8 < first_unread < HISTORY + 1, first_unread

    # The author has read it all: the chat opens at its end, and scrolling up brings every
    # older page, each message once, in order.
    author = await open_as(demo, browser, contexts, TEACHER, LAPTOP)
    await open_chat(author, "Архив задач")
    await expect(message(author, f"Запись архива {HISTORY}")).to_be_in_viewport()
    messages = author.get_by_role("log", name="Сообщения")
    articles = author.locator("article.msg")
    loaded = await articles.count()
    top = message(author, await articles.first.locator(".text").inner_text())
    await messages.evaluate(SCROLL_TO_TOP)
    await expect(articles).not_to_have_count(loaded)
    # The page above came in without moving what the reader was looking at.
    await expect(top).to_be_in_viewport()
    start = author.get_by_text("Это начало чата")
    for _ in range(20):
        if await start.count():
            break
        await messages.evaluate(SCROLL_TO_TOP)
        await author.wait_for_timeout(200)
    await expect(start).to_be_visible()
    texts = await author.locator("article.msg .text").all_inner_texts()
    expected = [f"Запись архива {n}" for n in range(1, HISTORY + 1)]
    expected[6] = "Задача про кенгуру"
    assert texts == expected
    no_errors(student, author)


async def test_a_dropped_connection_resumes_without_loss_or_doubles(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    student = await open_as(demo, browser, contexts, STUDENT, PHONE, SOCKET_SWITCH)
    teacher = await demo.client(TEACHER)
    await teacher.connect()
    try:
        [chat] = [c for c in await teacher.list_chats() if c.title == SUBJECT]
        await open_chat(student, SUBJECT)
        await send(student, "До обрыва")

        await student.evaluate("window.__cut()")
        await expect(student.get_by_role("status").filter(has_text="Нет связи")).to_be_visible()
        await teacher.post(chat.id, "Пока вас не было: первое")
        await teacher.post(chat.id, "Пока вас не было: второе")
        box = student.get_by_label("Сообщение", exact=True)
        await box.fill("Написано без связи")
        await box.press("Enter")
        await expect(message(student, "Написано без связи")).to_contain_text("Отправляется…")
        await student.wait_for_timeout(1000)
        await student.evaluate("window.__restore()")

        for text in ("Пока вас не было: первое", "Пока вас не было: второе"):
            await expect(message(student, text)).to_have_count(1, timeout=20_000)
        await expect(message(student, "Написано без связи")).not_to_contain_text("Отправляется…")
        await teacher.post(chat.id, "После обрыва")
        await expect(message(student, "После обрыва")).to_have_count(1)
        # Exactly once on both sides, in order.
        for text in ("До обрыва", "Написано без связи"):
            await expect(message(student, text)).to_have_count(1)
        texts = await student.locator("article.msg .text").all_inner_texts()
        assert texts[-5:] == [
            "До обрыва",
            "Пока вас не было: первое",
            "Пока вас не было: второе",
            "Написано без связи",
            "После обрыва",
        ], texts
        history: HistoryResult = await teacher.call(ChatHistory(chat_id=chat.id, limit=20))
        posted = [e.text for e in history.events if e.kind == "message"]
        assert posted.count("Написано без связи") == 1, posted
        assert posted.count("До обрыва") == 1, posted
        no_errors(student)
    finally:
        await teacher.close()
