"""The demo journal in Chromium: a teacher's "Личные сообщения" and "+ Новый чат", then a
student linking an educational profile through the web client's /link/… page and back."""

from __future__ import annotations

import json

from playwright.async_api import Browser, Page, expect

from protocol.client import http_request
from server.api.sessions import COOKIE
from tests.browser.conftest import code_from_outbox, screenshot_path
from tests.integration.test_demo import Demo, sign_in

PHONE = "+79161234567"
OTHER_PHONE = "+79161234568"


async def new_page(browser: Browser) -> Page:
    return await browser.new_page(viewport={"width": 1024, "height": 800}, locale="ru-RU")


async def test_a_teacher_sees_her_chats_and_makes_one(demo: Demo, browser: Browser) -> None:
    page = await new_page(browser)
    await page.goto(demo.server.url + "/demo-journal/")
    await expect(page.get_by_role("heading", name="Демо-журнал")).to_be_visible()
    await expect(page.get_by_role("heading", name="Ученики 7А")).to_be_visible()
    await page.screenshot(path=screenshot_path("demo-journal-home"), full_page=True)

    await page.get_by_role("link", name="Иванова Мария Петровна").click()
    await expect(page.get_by_role("heading", name="Иванова Мария Петровна")).to_be_visible()
    await expect(page.get_by_role("heading", name="Личные сообщения")).to_be_visible()
    chats = page.locator(".chats li")
    await expect(chats).to_have_count(7)
    await expect(chats.filter(has_text="Родители 7А")).to_be_visible()
    await page.screenshot(path=screenshot_path("demo-journal-teacher"), full_page=True)

    await page.get_by_role("link", name="+ Новый чат").click()
    await expect(page.get_by_role("heading", name="Свой чат")).to_be_visible()
    form = page.locator("#custom-chat")
    await form.get_by_label("Название").fill("Подготовка к олимпиаде")
    await form.get_by_text("Ученики 7А").click()
    await form.get_by_label("Алексеев Артём Дмитриевич").check()
    await form.get_by_label("Белова София Андреевна").check()
    await page.screenshot(path=screenshot_path("demo-journal-new-chat-form"), full_page=True)
    await form.get_by_role("button", name="Создать чат").click()

    await expect(page.get_by_role("status")).to_have_text("Чат «Подготовка к олимпиаде» создан.")
    made = chats.filter(has_text="Подготовка к олимпиаде")
    await expect(made).to_contain_text("3 участника")
    await expect(chats).to_have_count(8)
    await page.screenshot(path=screenshot_path("demo-journal-chat-created"), full_page=True)
    await page.close()


async def test_a_student_links_her_profile_through_parta_and_comes_back(
    demo: Demo, browser: Browser
) -> None:
    page = await new_page(browser)
    await page.goto(demo.server.url + "/demo-journal/")
    await page.get_by_role("link", name="Белова София Андреевна").click()
    await expect(page.locator("#link-status")).to_contain_text("не привязан")
    await page.get_by_role("button", name="Привязать учебный профиль").click()

    # Parta's confirmation page: sign in with a phone and the code, make the profile, confirm.
    await page.wait_for_url("**/link/*")
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Белова София Андреевна")
    await page.get_by_label("Номер телефона").fill(PHONE)
    await page.get_by_role("button", name="Получить код").click()
    await page.get_by_label("Код из SMS").fill(await code_from_outbox(demo.server.data_dir, PHONE))
    await page.screenshot(path=screenshot_path("demo-parta-link-sign-in"), full_page=True)
    await page.get_by_role("button", name="Войти", exact=True).click()
    await expect(page.get_by_role("heading", name="Учебный профиль")).to_be_visible()
    await page.get_by_label("Фамилия").fill("Белова")
    await page.get_by_label("Имя", exact=True).fill("София")
    await page.get_by_label("Отчество (если есть)").fill("Андреевна")
    await page.get_by_label("Дата рождения").fill("2012-08-23")
    await page.get_by_label("женский").check()
    await page.get_by_role("button", name="Создать профиль").click()
    await expect(page.get_by_role("heading", name="Подтвердите привязку")).to_be_visible()
    await page.screenshot(path=screenshot_path("demo-parta-link-confirm"), full_page=True)
    await page.get_by_role("button", name="Подтвердить привязку").click()

    await page.wait_for_url("**/demo-journal/people/s702?from=parta")
    await expect(page.get_by_role("status")).to_contain_text("учебный профиль привязан")
    await expect(page.locator("#link-status")).to_contain_text("Учебный профиль привязан")
    await expect(page.get_by_role("button", name="Привязать учебный профиль")).to_have_count(0)
    await expect(page.locator(".chats li").filter(has_text="7А класс")).to_be_visible()
    await page.screenshot(path=screenshot_path("demo-journal-linked"), full_page=True)

    await page.get_by_role("link", name="← Все люди").click()
    student = page.locator(".people li").filter(has_text="Белова София Андреевна")
    await expect(student.locator(".linked")).to_be_visible()
    await page.close()


async def test_linking_started_in_parta_signs_in_at_the_demo_journal(
    demo: Demo, browser: Browser
) -> None:
    """Parta sends the person to the journal's link URL; the demo journal asks who they are
    and sends them back with an assertion and the same state."""
    client = await sign_in(demo.server, OTHER_PHONE)
    await client.create_profile(
        last_name="Егоров", first_name="Иван", birth_date="2012-06-17", sex="male"
    )
    regions = (await client.http_json("GET", "/api/v1/regions"))["regions"]
    [journal] = [j for r in regions for j in r["journals"]]
    status, headers, raw = await http_request(
        "POST",
        f"{demo.server.url}/api/v1/links/start",
        body=json.dumps({"journal_id": journal["id"]}).encode(),
        headers={"authorization": f"Bearer {client.token}", "content-type": "application/json"},
    )
    assert status == 200, raw
    state = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    context = await browser.new_context(viewport={"width": 1024, "height": 800}, locale="ru-RU")
    # The browser that started linking in Parta: signed in, with the state cookie.
    await context.add_cookies(
        [
            {"name": COOKIE, "value": str(client.token), "url": demo.server.url},
            {"name": "parta_link_state", "value": state, "url": demo.server.url},
        ]
    )
    page = await context.new_page()
    await page.goto(json.loads(raw)["url"])
    await expect(page.get_by_role("heading", name="Вход в демо-журнал")).to_be_visible()
    await page.screenshot(path=screenshot_path("demo-journal-sign-in-for-link"), full_page=True)
    await page.get_by_role("button", name="Егоров Иван Сергеевич").click()

    await page.wait_for_url("**/link/*")
    await expect(page.get_by_role("heading", name="Подтвердите привязку")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Егоров Иван Сергеевич")
    await page.get_by_role("button", name="Подтвердить привязку").click()
    # Started in Parta, it ends in Parta: "Дневник" with the new link.
    await page.wait_for_url("**/links?linked=*")
    await expect(page.locator("main")).to_contain_text("Вы в журнале: Егоров Иван Сергеевич")
    await page.goto(demo.server.url + "/demo-journal/people/s705")
    await expect(page.locator("#link-status")).to_contain_text("Учебный профиль привязан")

    # A message from the class teacher shows as unread in the student's list.
    teacher = await demo.client("Иванова Мария Петровна")
    await teacher.connect()
    [cls] = [c for c in await teacher.list_chats() if c.title == "7А класс"]
    await teacher.post(cls.id, "Завтра контрольная по русскому языку.")
    await teacher.close()
    await page.reload()
    unread = page.locator(".chats li").filter(has_text="7А класс").locator(".unread")
    await expect(unread).to_have_text("1")
    await page.screenshot(path=screenshot_path("demo-journal-unread"), full_page=True)
    await context.close()
