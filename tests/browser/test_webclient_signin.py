"""The web client's first screens in Chromium: sign in with a phone and the code from the
outbox, create the educational profile, reach the chat list, switch language, sign out."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.browser.conftest import code_from_outbox, screenshot_path
from tests.integration.conftest import RunningServer

PHONE = "+79031112233"


async def test_sign_in_create_the_profile_and_sign_out(
    server: RunningServer, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 800}, locale="ru-RU")
    await page.goto(server.url + "/")
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Не регистрируйте профиль ребёнка")
    await page.get_by_label("Номер телефона").fill("8 903 111-22-33")
    await page.get_by_role("button", name="Получить код").click()
    await expect(page.locator("main")).to_contain_text("Мы отправили код на +79031112233")

    await page.get_by_label("Код из SMS").fill("000000")
    await page.get_by_role("button", name="Войти").click()
    # The refusal in the reader's language, not the API's English detail.
    await expect(page.get_by_role("alert")).to_have_text("Неверный код")

    await page.get_by_label("Код из SMS").fill(await code_from_outbox(server.data_dir, PHONE))
    await page.screenshot(path=screenshot_path("webclient-sign-in"), full_page=True)
    await page.get_by_role("button", name="Войти").click()

    await expect(page.get_by_role("heading", name="Учебный профиль")).to_be_visible()
    await page.get_by_label("Фамилия").fill("Смирнова")
    await page.get_by_label("Имя", exact=True).fill("Анна")
    await page.get_by_label("Дата рождения").fill("2011-03-14")
    await page.get_by_label("женский").check()
    await page.screenshot(path=screenshot_path("webclient-profile"), full_page=True)
    await page.get_by_role("button", name="Создать профиль").click()

    nav = page.get_by_role("navigation", name="Основное меню")
    await expect(nav.get_by_role("link", name="Чаты")).to_be_visible()
    await nav.get_by_role("button", name="English").click()
    english = page.get_by_role("navigation", name="Main menu")
    await expect(english.get_by_role("link", name="Chats")).to_be_visible()
    await english.get_by_role("button", name="Русский").click()

    # Signed in survives a reload (the session cookie), and signing out ends it.
    await page.reload()
    await expect(nav.get_by_role("link", name="Чаты")).to_be_visible()
    await nav.get_by_role("button", name="Выйти").click()
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await page.close()


async def test_asking_for_a_second_code_at_once_says_how_long_to_wait(
    server: RunningServer, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 800}, locale="ru-RU")
    await page.goto(server.url + "/")
    await page.get_by_label("Номер телефона").fill("+7 903 111-22-44")
    await page.get_by_role("button", name="Получить код").click()
    await page.get_by_role("button", name="Другой номер").click()
    await page.get_by_role("button", name="Получить код").click()  # the number is kept
    await expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^Код уже отправлен, новый можно запросить позже\. Попробуйте через \d+ с\.$")
    )
    await page.screenshot(path=screenshot_path("webclient-sign-in-wait"), full_page=True)
    await page.close()
