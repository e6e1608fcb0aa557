"""Linking in the web client, on a phone-sized screen, through the demo journal: from the
journal (sign in on Parta's /link/… page, create the profile, confirm, back to the journal),
from Parta ("Дневник": region, journal, the journal's sign-in, confirm, back to "Дневник"),
unlinking after a question, and the errors a person can meet on the link page."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect

from protocol.client import Client, http_request
from server.api.sessions import COOKIE
from tests.browser.conftest import code_from_outbox, screenshot_path
from tests.integration.test_demo import Demo, post_form, sign_in

PHONE = "+79167770001"
PARTA_PHONE = "+79167770002"
OWNER_PHONE = "+79167770003"
STRANGER_PHONE = "+79167770004"
JOURNAL = "Демо-журнал"


async def phone_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(viewport={"width": 390, "height": 844}, locale="ru-RU")


async def signed_in(browser: Browser, demo: Demo, phone: str, last: str, first: str) -> Page:
    """A phone-sized page whose browser is signed in (the session cookie) with a profile."""
    client = await sign_in(demo.server, phone)
    await client.create_profile(
        last_name=last, first_name=first, birth_date="1985-01-01", sex="male"
    )
    context = await phone_context(browser)
    await context.add_cookies(
        [{"name": COOKIE, "value": str(client.token), "url": demo.server.url}]
    )
    return await context.new_page()


async def journal_link(demo: Demo, person_id: str) -> str:
    """Where the demo journal's "Привязать учебный профиль" button sends a browser: Parta's
    landing with a fresh assertion for that person."""
    status, headers, _ = await post_form(
        f"{demo.server.url}/demo-journal/people/{person_id}/link", {}
    )
    assert status == 303
    return demo.server.url + headers["location"]


async def test_linking_from_the_journal_signs_in_on_the_link_page(
    demo: Demo, browser: Browser
) -> None:
    context = await phone_context(browser)
    page = await context.new_page()
    await page.goto(demo.server.url + "/demo-journal/people/s703")
    await page.get_by_role("button", name="Привязать учебный профиль").click()

    # Parta's page says who asks and for whom, then signs the person in.
    await page.wait_for_url("**/link/*")
    link_page = page.url
    await expect(page.get_by_role("heading", name="Привязка учебного профиля")).to_be_visible()
    summary = page.locator("section", has=page.get_by_role("heading", name="Привязка"))
    await expect(summary).to_contain_text(f"Журнал «{JOURNAL}» просит привязать")
    await expect(summary).to_contain_text("Васильев Максим Игоревич")
    await expect(summary).to_contain_text("ученик, ")
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await page.get_by_label("Номер телефона").fill(PHONE)
    await page.get_by_role("button", name="Получить код").click()
    await page.get_by_label("Код из SMS").fill(await code_from_outbox(demo.server.data_dir, PHONE))
    await page.screenshot(path=screenshot_path("links-journal-sign-in"), full_page=True)
    await page.get_by_role("button", name="Войти", exact=True).click()

    await expect(page.get_by_role("heading", name="Учебный профиль")).to_be_visible()
    await page.get_by_label("Фамилия").fill("Васильев")
    await page.get_by_label("Имя", exact=True).fill("Максим")
    await page.get_by_label("Дата рождения").fill("2012-02-05")
    await page.get_by_label("мужской").check()
    await page.get_by_role("button", name="Создать профиль").click()

    confirm = page.locator("section", has=page.get_by_role("heading", name="Подтвердите"))
    await expect(confirm).to_contain_text(
        "Вы привязываете профиль Васильев Максим к учётной записи Васильев Максим Игоревич"
        f" в журнале «{JOURNAL}»."
    )
    await expect(confirm.locator(".links-warning")).to_have_count(0)
    await page.screenshot(path=screenshot_path("links-journal-confirm"), full_page=True)
    await page.get_by_role("button", name="Подтвердить привязку").click()

    # Back to the journal's return URL, linked.
    await page.wait_for_url("**/demo-journal/people/s703?from=parta")
    await expect(page.locator("#link-status")).to_contain_text("Учебный профиль привязан")

    # "Дневник" in Parta shows the link: journal, region, as whom.
    await page.goto(demo.server.url + "/")
    nav = page.get_by_role("navigation", name="Основное меню")
    await nav.get_by_role("link", name="Дневник").click()
    await expect(page.get_by_role("heading", name="Дневник", exact=True)).to_be_visible()
    item = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=JOURNAL))
    await expect(item).to_contain_text("Вы в журнале: Васильев Максим Игоревич")
    await expect(item).to_contain_text("Демо-регион")
    # The only journal is linked: nothing is left to connect.
    await expect(page.get_by_role("heading", name="Подключить дневник")).to_have_count(0)
    await page.screenshot(path=screenshot_path("links-list"), full_page=True)

    # The link page, opened again once used, says it no longer works.
    await page.goto(link_page)
    await expect(page.get_by_role("heading", name="Ссылка больше не действует")).to_be_visible()
    await expect(page.get_by_role("link", name="Мои дневники")).to_be_visible()
    await context.close()


async def test_linking_started_in_parta_comes_back_to_the_journal_page_and_unlinks(
    demo: Demo, browser: Browser
) -> None:
    page = await signed_in(browser, demo, PARTA_PHONE, "Григорьева", "Анна")
    await page.goto(demo.server.url + "/links")
    await expect(page.get_by_role("heading", name="Дневник", exact=True)).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Дневник пока не подключён.")
    # One region and one journal on this server: both are chosen already.
    await expect(page.get_by_label("Регион")).to_have_value("demo")
    await expect(page.get_by_label(JOURNAL)).to_be_checked()
    await page.screenshot(path=screenshot_path("links-empty"), full_page=True)
    await page.get_by_role("button", name="Продолжить").click()

    # The journal's own sign-in, then back through Parta's landing to the link page.
    await expect(page.get_by_role("heading", name="Вход в демо-журнал")).to_be_visible()
    await page.get_by_role("button", name="Григорьева Анна Сергеевна").click()
    await page.wait_for_url("**/link/*?from=parta")
    await expect(page.get_by_role("heading", name="Подтвердите привязку")).to_be_visible()
    await expect(page.locator("main")).to_contain_text(
        "Вы привязываете профиль Григорьева Анна к учётной записи Григорьева Анна Сергеевна"
    )
    await page.screenshot(path=screenshot_path("links-parta-confirm"), full_page=True)
    await page.get_by_role("button", name="Подтвердить привязку").click()

    # It ends in Parta, on "Дневник", with the new link.
    await page.wait_for_url("**/links?linked=*")
    await expect(page.get_by_role("status")).to_have_text(
        f"Дневник «{JOURNAL}» подключён: чаты школы уже в списке чатов."
    )
    item = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=JOURNAL))
    await expect(item).to_contain_text("Вы в журнале: Григорьева Анна Сергеевна")
    await page.screenshot(path=screenshot_path("links-linked-from-parta"), full_page=True)

    # In English too.
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("heading", name="Journal", exact=True)).to_be_visible()
    await expect(item).to_contain_text("You in the journal: Григорьева Анна Сергеевна")
    await page.screenshot(path=screenshot_path("links-linked-english"), full_page=True)
    await page.get_by_role("button", name="Русский").click()

    # Unlinking asks first; "Отмена" keeps the link and gives the focus back.
    unlink = page.get_by_role("button", name=f"Отвязать «{JOURNAL}»")
    await unlink.click()
    question = page.get_by_role("group", name=f"Отвязать «{JOURNAL}»?")
    await expect(question).to_contain_text("Чаты этой школы пропадут из вашего списка.")
    await expect(question.get_by_role("button", name="Да, отвязать")).to_be_focused()
    await page.screenshot(path=screenshot_path("links-unlink-question"), full_page=True)
    await question.get_by_role("button", name="Отмена").click()
    await expect(unlink).to_be_focused()
    await expect(item).to_be_visible()

    # With the keyboard: Enter on "Отвязать", Enter on "Да, отвязать".
    await page.keyboard.press("Enter")
    await expect(question.get_by_role("button", name="Да, отвязать")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(f"Дневник «{JOURNAL}» отвязан.")
    await expect(item).to_have_count(0)
    await expect(page.locator("main")).to_contain_text("Дневник пока не подключён.")
    await page.screenshot(path=screenshot_path("links-unlinked"), full_page=True)
    await page.reload()
    await expect(page.locator("main")).to_contain_text("Дневник пока не подключён.")
    await page.context.close()


async def test_the_link_page_explains_what_went_wrong(demo: Demo, browser: Browser) -> None:
    # The owner links s706 (over the API, as a signed-in browser would).
    owner = await sign_in(demo.server, OWNER_PHONE)
    await owner.create_profile(
        last_name="Захарова", first_name="Полина", birth_date="2012-09-02", sex="female"
    )
    await confirm_over_the_api(owner, await journal_link(demo, "s706"))

    # A stranger opens a link for the same journal account: the names differ (a warning),
    # and confirming is refused because the account is someone else's.
    page = await signed_in(browser, demo, STRANGER_PHONE, "Козлов", "Даниил")
    await page.goto(await journal_link(demo, "s706"))
    await expect(page.get_by_role("heading", name="Подтвердите привязку")).to_be_visible()
    await expect(page.locator(".links-warning")).to_contain_text("Фамилии в профиле и в журнале")
    await page.get_by_role("button", name="Подтвердить привязку").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Эта учётная запись журнала уже привязана к другому профилю Parta"
    )
    await page.screenshot(path=screenshot_path("links-someone-elses"), full_page=True)

    # "Войти с другим номером" signs out and offers the sign-in on the same page.
    await page.get_by_role("button", name="Войти с другим номером").click()
    await expect(page.get_by_role("heading", name="Вход в Parta")).to_be_visible()
    await expect(page.get_by_role("heading", name="Привязка учебного профиля")).to_be_visible()

    # The owner, linked to s706 already, opens a link for s707: unlink the other first.
    await page.context.add_cookies(
        [{"name": COOKIE, "value": str(owner.token), "url": demo.server.url}]
    )
    await page.goto(await journal_link(demo, "s707"))
    await page.get_by_role("button", name="Подтвердить привязку").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        f"Ваш профиль уже привязан в журнале «{JOURNAL}» к учётной записи"
        " Захарова Полина Алексеевна"
    )
    await page.screenshot(path=screenshot_path("links-another-account"), full_page=True)

    # An unknown (expired, used) request.
    await page.goto(demo.server.url + "/link/no-such-request")
    await expect(page.get_by_role("heading", name="Ссылка больше не действует")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Вернитесь в журнал")
    await page.screenshot(path=screenshot_path("links-gone"), full_page=True)
    await page.context.close()


async def confirm_over_the_api(client: Client, landing: str) -> None:
    status, headers, _ = await http_request("GET", landing)
    assert status == 303
    pending = headers["location"].removeprefix("/link/")
    await client.http_json("POST", f"/api/v1/links/pending/{pending}/confirm")
