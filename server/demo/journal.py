"""The demo journal: a tiny electronic journal that Parta plays itself under ``/demo-journal/``.

It shows an integrator the embedding end to end: pick a person of the demo school, see
their "Личные сообщения" (``GET /api/v1/users/{id}/chats``), make a chat as a teacher
(``POST /api/v1/chats?as=…``), link an educational profile (a signed assertion sent to
``/api/v1/link``), and answer linking that starts in Parta (its link URL). Like any journal
it talks to Parta over the Journal API, server-side: its API token and signing secret never
reach the browser. Its own sign-in is a demo: anyone who opens it may act as anyone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from server.api.pages import escape, page
from server.api.router import Router
from server.config import Settings
from server.demo import school
from server.demo.journal_api import JournalApi, JournalApiError, assertion
from server.demo.school import DemoPerson
from server.demo.seed import (
    JOURNAL_NAME,
    RULE,
    DemoCredentials,
    Registered,
    Seeded,
    pretty_phone,
    push_school,
    ready_to_sign_in,
    register_journal,
    report,
)
from server.domain.journals import JournalService
from server.domain.linking import LinkingService
from server.gateway.http import Request, Response
from server.store import Store

logger = logging.getLogger("parta.demo")

PREFIX = "/demo-journal"
KINDS = {
    "class": "класс",
    "parents": "родители",
    "colleagues": "коллеги",
    "subject": "предмет",
    "custom": "чат",
}
ROLE_TITLES = (
    ("teacher", "Учителя"),
    ("staff", "Сотрудники"),
    ("student", "Ученики"),
    ("parent", "Родители"),
)
_CSS = (
    "<style>body{max-width:46em}nav{margin-bottom:1em}"
    ".people{columns:2 18em;padding-left:1.2em}.people li{padding:.1em 0;break-inside:avoid}"
    ".chats{list-style:none;padding:0}.chats li{border:1px solid #ccd;border-radius:6px;"
    "padding:.45em .7em;margin:.35em 0;display:flex;gap:.5em;align-items:baseline}"
    ".chats .title{font-weight:600;flex:1}.kind{font-size:.8em;background:#e8ecf7;"
    "border-radius:4px;padding:.05em .4em}.unread{background:#c22;color:#fff;"
    "border-radius:1em;padding:0 .5em;font-size:.85em}.notice{background:#eaf6ea;"
    "border:1px solid #8b8;border-radius:6px;padding:.5em .7em}.linked{color:#176d17}"
    ".actions{display:flex;gap:.6em;flex-wrap:wrap;align-items:center}"
    ".actions form{margin:0}a.button{display:inline-block;padding:.4em .7em;border:1px solid"
    " #888;border-radius:4px;text-decoration:none;color:inherit;background:#f4f4f4}"
    "fieldset{border:1px solid #ccd;border-radius:6px;margin:.6em 0}"
    "details{margin:.2em 0}.pick{display:grid;gap:.1em .6em;"
    "grid-template-columns:repeat(auto-fill,minmax(17em,1fr))}.pick h2{grid-column:1/-1}"
    ".pick button{text-align:left;margin:0}"
    "table{border-collapse:collapse}td{padding:.15em .6em .15em 0}</style>"
)


def _plural(n: int, forms: tuple[str, str, str]) -> str:
    """1 участник, 2 участника, 5 участников."""
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} {forms[0]}"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return f"{n} {forms[1]}"
    return f"{n} {forms[2]}"


def _form(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0].strip() if values else ""


def _redirect(location: str) -> Response:
    return Response(303, headers=[("Location", location), ("Cache-Control", "no-store")])


def _person_url(person: DemoPerson) -> str:
    return f"{PREFIX}/people/{quote(person.id, safe='')}"


def _message(title: str, text: str, status: int) -> Response:
    return page(
        title,
        f"{_CSS}<nav><a href='{PREFIX}/'>← Демо-журнал</a></nav><p>{escape(text)}</p>",
        status=status,
    )


def _local_url(settings: Settings) -> str:
    """Where the server itself reaches its listener: the journal calls come from here."""
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _groups_by_role() -> list[tuple[str, list[DemoPerson]]]:
    """People in the order a journal lists them: teachers, staff, each class, parents."""
    sections: list[tuple[str, list[DemoPerson]]] = []
    for role, title in ROLE_TITLES:
        people = [p for p in school.PEOPLE.values() if p.role == role]
        if role == "student":
            sections += [
                (f"Ученики {cls.name}", [school.PEOPLE[s] for s in cls.student_ids])
                for cls in school.CLASSES
            ]
        else:
            sections.append((title, people))
    return sections


Handler = Callable[[Request], Awaitable[Response]]


class DemoJournal:
    """The demo journal's pages and its seeding; built only with ``parta serve --demo``."""

    def __init__(
        self, settings: Settings, store: Store, journals: JournalService, linking: LinkingService
    ) -> None:
        self._settings = settings
        self._store = store
        self._journals = journals
        self._linking = linking
        self._registered: Registered | None = None
        self._api: JournalApi | None = None
        self.seeded: Seeded | None = None
        self._failure: str | None = None

    @property
    def link_url(self) -> str:
        """The journal's page that linking started in Parta comes to."""
        return f"{self._settings.base_url}{PREFIX}/link"

    def register(self, router: Router) -> None:
        router.add("GET", f"{PREFIX}/", self._ready(self.home))
        router.add("GET", PREFIX, self.to_home)
        router.add("GET", f"{PREFIX}/people/{{user_id}}", self._ready(self.person))
        router.add("POST", f"{PREFIX}/people/{{user_id}}/link", self._ready(self.link_person))
        router.add("GET", f"{PREFIX}/people/{{user_id}}/chats/new", self._ready(self.new_chat))
        router.add("POST", f"{PREFIX}/people/{{user_id}}/chats", self._ready(self.create_chat))
        router.add("GET", f"{PREFIX}/link", self._ready(self.sign_in_for_link))
        router.add("POST", f"{PREFIX}/link", self._ready(self.link_signed_in))

    # --- seeding ---------------------------------------------------------------------------

    async def seed(self, out: TextIO | None = None) -> None:
        """Register, push the school, make the sign-in people; print who can sign in.
        A failure is printed too (in the same frame), so nobody waits for the block."""
        try:
            registered = await register_journal(
                self._settings.data_dir, self._store, self._journals, self.link_url
            )
            api = JournalApi(_local_url(self._settings), registered.credentials.api_token)
            today = school.school_today()
            roster, schedule = await push_school(api, today)
            people = await ready_to_sign_in(self._store, self._linking, registered)
        except Exception as exc:
            logger.exception("demo seeding failed")
            self._failure = str(exc) or type(exc).__name__
            lines = [RULE, f"Демо-школу заполнить не удалось: {exc}", RULE]
        else:
            self._registered, self._api = registered, api
            self.seeded = Seeded(registered, roster, schedule, school.week_around(today), people)
            outbox = None
            if not self._settings.sms_webhook_url:
                outbox = self._settings.data_dir / "sms-outbox.jsonl"
            lines = report(self.seeded, self._settings.base_url, outbox, self.link_url)
            logger.info(
                "demo school seeded", extra={"journal_id": registered.credentials.journal_id}
            )
        out = out or sys.stdout
        out.write("\n".join(lines) + "\n")
        out.flush()

    # --- helpers ---------------------------------------------------------------------------

    def _ready(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if self._api is None:
                text = "Демо-журнал ещё заполняется. Обновите страницу через несколько секунд."
                if self._failure is not None:
                    text = f"Демо-школу заполнить не удалось ({self._failure}): см. журнал сервера."
                response = _message("Демо-журнал", text, 503)
                response.headers.append(("Retry-After", "2"))
                return response
            return await handler(request)

        return guarded

    @property
    def _journal_api(self) -> JournalApi:
        assert self._api is not None
        return self._api

    @property
    def _credentials(self) -> DemoCredentials:
        assert self._registered is not None
        return self._registered.credentials

    async def _linked(self, ext_id: str) -> bool:
        person = await self._store.journals.person(self._credentials.journal_id, ext_id)
        return person is not None and (
            await self._store.journals.linked_account(person.id) is not None
        )

    def _assertion(self, person: DemoPerson, return_url: str) -> str:
        credentials = self._credentials
        return assertion(credentials.journal_id, credentials.signing_secret, person.id, return_url)

    def _stale_link_url(self) -> str:
        """A warning when Parta has the journal at another address (the server moved):
        the way back from Parta would then fail its origin check."""
        registered = self._registered
        if registered is None or registered.link_url == self.link_url:
            return ""
        return (
            '<p class="error">Журнал зарегистрирован в Parta с адресом привязки'
            f" {escape(registered.link_url)}, а сервер сейчас на {escape(self.link_url)}:"
            " привязка отсюда не пройдёт проверку адреса возврата. Запустите сервер с прежним"
            " адресом.</p>"
        )

    def _is_parta_landing(self, url: str) -> bool:
        """Linking started in Parta may only send the browser back to Parta's landing."""
        parts = urlsplit(url)
        return (
            f"{parts.scheme}://{parts.netloc}" == self._settings.public_origin
            and parts.path == "/api/v1/link"
            and not parts.query
            and not parts.fragment
        )

    # --- pages -----------------------------------------------------------------------------

    async def to_home(self, request: Request) -> Response:
        return Response(308, headers=[("Location", f"{PREFIX}/")])

    async def home(self, request: Request) -> Response:
        linked = {ext_id for ext_id in school.PEOPLE if await self._linked(ext_id)}
        body = [
            _CSS,
            f"<p><b>{escape(school.SCHOOL_NAME)}</b>: журнал-заглушка, в который встроен Parta."
            " Выберите человека, чтобы увидеть журнал его глазами: его «Личные сообщения»,"
            " новый чат, привязку учебного профиля.</p>",
            '<p class="muted">Вход без пароля: это демо. Отметка ✓ — учебный профиль привязан.</p>',
        ]
        for title, people in _groups_by_role():
            items = "".join(
                f'<li><a href="{_person_url(p)}">{escape(p.full_name)}</a>'
                + (
                    ' <span class="linked" title="профиль привязан">✓</span>'
                    if p.id in linked
                    else ""
                )
                + (f' <span class="muted">— {escape(p.note)}</span>' if p.note else "")
                + "</li>"
                for p in people
            )
            body.append(f'<h2>{escape(title)}</h2><ul class="people">{items}</ul>')
        if self.seeded is not None:
            rows = "".join(
                f"<tr><td>{escape(pretty_phone(r.phone))}</td>"
                f"<td>{escape(r.person.full_name)}</td></tr>"
                for r in self.seeded.people
            )
            outbox = (
                "Код входа — в файле sms-outbox.jsonl в каталоге данных."
                if not self._settings.sms_webhook_url
                else "Код входа уйдёт через SMS-шлюз."
            )
            body.append(
                f"<h2>Готовые учётные записи Parta</h2><table>{rows}</table>"
                f'<p class="muted">{outbox}</p>'
            )
        return page("Демо-журнал", "".join(body))

    async def person(self, request: Request) -> Response:
        person = school.PEOPLE.get(request.params["user_id"])
        if person is None:
            return _message("Демо-журнал", "В демо-школе нет такого человека.", 404)
        try:
            chats = await self._journal_api.chats_of(person.id)
        except JournalApiError as refused:
            return _message(person.full_name, f"Parta не ответил: {refused.detail}", 502)
        linked = await self._linked(person.id)
        notice = ""
        created = request.query_value("created")
        if created is not None:
            title = next((c["title"] for c in chats if str(c["id"]) == created), None)
            if title is not None:
                notice = f'<p class="notice" role="status">Чат «{escape(title)}» создан.</p>'
        elif request.query_value("from") == "parta" and linked:
            notice = (
                '<p class="notice" role="status">Вы вернулись из Parta:'
                " учебный профиль привязан.</p>"
            )
        if linked:
            profile = (
                '<p class="linked" id="link-status"><b>✓ Учебный профиль привязан.</b>'
                " Чаты ниже появились у человека в Parta.</p>"
            )
        else:
            profile = (
                '<p id="link-status">Учебный профиль Parta не привязан: человек ещё не видит'
                " своих чатов.</p>"
            )
        phone = next(
            (
                r.phone
                for r in (self.seeded.people if self.seeded else [])
                if r.person.id == person.id
            ),
            None,
        )
        if phone is not None:
            profile += (
                f'<p class="muted">Войти в Parta: {escape(pretty_phone(phone))},'
                " код — в sms-outbox.jsonl.</p>"
            )
        items = "".join(self._chat_item(chat) for chat in chats) or (
            '<li class="muted">Чатов пока нет.</li>'
        )
        link_button = (
            ""
            if linked
            else f'<form method="post" action="{_person_url(person)}/link">'
            "<button>Привязать учебный профиль</button></form>"
        )
        body = (
            f"{_CSS}<nav><a href='{PREFIX}/'>← Все люди</a></nav>"
            f'<p class="muted">{escape(school.describe(person))} · {escape(school.SCHOOL_NAME)}</p>'
            f"{notice}{self._stale_link_url()}{profile}"
            f'<div class="actions"><a class="button" href="{_person_url(person)}/chats/new">'
            f"+ Новый чат</a>{link_button}</div>"
            f'<h2>Личные сообщения</h2><ul class="chats">{items}</ul>'
        )
        return page(person.full_name, body)

    @staticmethod
    def _chat_item(chat: dict[str, Any]) -> str:
        unread = int(chat.get("unread_count") or 0)
        members = int(chat.get("member_count") or 0)
        kind = str(chat.get("kind", ""))
        return (
            f'<li><span class="title">{escape(str(chat["title"]))}</span>'
            f'<span class="kind">{escape(KINDS.get(kind, kind))}</span>'
            f'<span class="muted">{_plural(members, ("участник", "участника", "участников"))}'
            "</span>"
            + (f'<span class="unread" title="непрочитанных">{unread}</span>' if unread else "")
            + "</li>"
        )

    # --- "+ Новый чат" ---------------------------------------------------------------------

    async def new_chat(self, request: Request) -> Response:
        person = school.PEOPLE.get(request.params["user_id"])
        if person is None:
            return _message("Новый чат", "В демо-школе нет такого человека.", 404)
        return self._chat_form(person)

    def _chat_form(self, person: DemoPerson, error: str = "", status: int = 200) -> Response:
        back = f"<nav><a href='{_person_url(person)}'>← {escape(person.full_name)}</a></nav>"
        if person.role not in ("teacher", "staff"):
            who = "Ученики" if person.role == "student" else "Родители"
            return page(
                "Новый чат",
                f"{_CSS}{back}<p>Новые чаты в журнале создают учителя и сотрудники школы."
                f" {who} пишут в чаты, куда их добавили: они в списке «Личные сообщения».</p>",
                status=403,
            )
        action = f"{_person_url(person)}/chats"
        sections = []
        for title, people in _groups_by_role():
            boxes = "".join(
                f'<label><input type="checkbox" name="member" value="{escape(p.id)}">'
                f" {escape(p.full_name)}</label>"
                for p in people
                if p.id != person.id
            )
            sections.append(f"<details><summary>{escape(title)}</summary>{boxes}</details>")
        pairs = self._subject_pairs(person)
        options = "".join(
            f'<option value="{cls.id}:{subject}">{escape(school.SUBJECTS[subject])}'
            f" {escape(cls.name)}</option>"
            for cls, subject in pairs
        )
        error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = (
            f"{_CSS}{back}{error_html}"
            f'<p class="muted">Чат создаётся от имени: {escape(person.full_name)}.</p>'
            f'<form method="post" action="{action}" id="custom-chat">'
            '<h2>Свой чат</h2><input type="hidden" name="kind" value="custom">'
            '<label>Название <input name="title" required maxlength="200" size="40"></label>'
            f"<fieldset><legend>Участники</legend>{''.join(sections)}</fieldset>"
            "<button>Создать чат</button></form>"
            f'<form method="post" action="{action}" id="subject-chat">'
            '<h2>Предметный чат</h2><input type="hidden" name="kind" value="subject">'
            f'<label>Класс и предмет <select name="pair">{options}</select></label>'
            '<p class="muted">В чат войдут ученики класса, которые учат этот предмет,'
            " и их учителя.</p><button>Создать предметный чат</button></form>"
        )
        return page("Новый чат", body, status=status)

    @staticmethod
    def _subject_pairs(person: DemoPerson) -> list[tuple[school.DemoClass, str]]:
        """The classes and subjects the person teaches (all of them for staff)."""
        pairs: list[tuple[school.DemoClass, str]] = []
        for cls in school.CLASSES:
            for subject in school.SUBJECTS:
                groups = [
                    g for g in school.GROUPS if g.class_id == cls.id and g.subject_id == subject
                ]
                if person.role == "staff" or any(g.teacher_id == person.id for g in groups):
                    pairs.append((cls, subject))
        return pairs

    async def create_chat(self, request: Request) -> Response:
        person = school.PEOPLE.get(request.params["user_id"])
        if person is None:
            return _message("Новый чат", "В демо-школе нет такого человека.", 404)
        form = _form(request)
        chat: dict[str, Any] = {"school_id": school.SCHOOL_ID}
        if _first(form, "kind") == "subject":
            class_id, _, subject = _first(form, "pair").partition(":")
            groups = [
                g for g in school.GROUPS if g.class_id == class_id and g.subject_id == subject
            ]
            if not groups:
                return self._chat_form(person, "Выберите класс и предмет.", 422)
            members: dict[str, bool] = {}
            for group in groups:
                members |= dict.fromkeys(group.student_ids, False)
                members[group.teacher_id] = True
            chat |= {"kind": "subject", "class_id": class_id, "subject_id": subject}
        else:
            title = _first(form, "title")
            if not title:
                return self._chat_form(person, "Напишите название чата.", 422)
            members = dict.fromkeys(
                (m for m in form.get("member", []) if m in school.PEOPLE), False
            )
            chat |= {"kind": "custom", "title": title[:200]}
        members.pop(person.id, None)
        chat["members"] = [{"user_id": m, "admin": admin} for m, admin in members.items()]
        try:
            chat_id = await self._journal_api.create_chat(person.id, chat)
        except JournalApiError as refused:
            reason = (
                "Создавать чаты могут только учителя и сотрудники школы."
                if refused.code == "forbidden"
                else f"Parta не создал чат: {refused.detail or refused.code}"
            )
            return self._chat_form(person, reason, 422 if refused.status < 500 else 502)
        return _redirect(f"{_person_url(person)}?created={chat_id}")

    # --- "Привязать учебный профиль" -------------------------------------------------------

    async def link_person(self, request: Request) -> Response:
        """The journal's button: a signed assertion for this person, off to Parta."""
        person = school.PEOPLE.get(request.params["user_id"])
        if person is None:
            return _message("Привязка", "В демо-школе нет такого человека.", 404)
        back = f"{self._settings.base_url}{_person_url(person)}?from=parta"
        signed = self._assertion(person, back)
        return _redirect(f"/api/v1/link?{urlencode({'assertion': signed})}")

    # --- linking started in Parta: the journal's link URL ----------------------------------

    async def sign_in_for_link(self, request: Request) -> Response:
        """Parta sent the person here to say who they are in the journal (a demo sign-in:
        pick anyone), with ``state`` and ``return_url`` to come back to."""
        state = request.query_value("state") or ""
        return_url = request.query_value("return_url") or ""
        if not state or len(state) > 200 or not self._is_parta_landing(return_url):
            return _message(
                "Вход в демо-журнал",
                "Ссылка на вход неполная: начните привязку в Parta заново.",
                400,
            )
        hidden = (
            f'<input type="hidden" name="state" value="{escape(state)}">'
            f'<input type="hidden" name="return_url" value="{escape(return_url)}">'
        )
        sections = "".join(
            f"<h2>{escape(title)}</h2>"
            + "".join(
                f'<button name="user_id" value="{escape(p.id)}">{escape(p.full_name)}</button>'
                for p in people
            )
            for title, people in _groups_by_role()
        )
        body = (
            f"{_CSS}<p>Parta просит подтвердить, кто вы в журнале «{JOURNAL_NAME}»."
            " Войдите — и вы вернётесь в Parta, чтобы привязать учебный профиль.</p>"
            '<p class="muted">Это демо: вход без пароля, выберите любого человека.</p>'
            f'<form method="post" action="{PREFIX}/link" class="pick">{hidden}{sections}</form>'
        )
        return page("Вход в демо-журнал", body)

    async def link_signed_in(self, request: Request) -> Response:
        form = _form(request)
        person = school.PEOPLE.get(_first(form, "user_id"))
        state, return_url = _first(form, "state"), _first(form, "return_url")
        if (
            person is None
            or not state
            or len(state) > 200
            or not self._is_parta_landing(return_url)
        ):
            return _message(
                "Вход в демо-журнал", "Не получилось: начните привязку в Parta заново.", 400
            )
        back = f"{self._settings.base_url}{_person_url(person)}?from=parta"
        query = urlencode({"assertion": self._assertion(person, back), "state": state})
        return _redirect(f"{return_url}?{query}")
