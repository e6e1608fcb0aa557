"""Linking over HTTP: the browser landing from a journal, the confirmation page, and a
person's links (start from Parta, list, unlink)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from server.api.inputs import parse_body
from server.api.pages import escape, page
from server.api.router import Router
from server.api.sessions import require_account
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.linking import LinkingService, LinkRefused
from server.gateway.http import Request, Response

STATE_COOKIE = "parta_link_state"
ROLES = {"teacher": "учитель", "student": "ученик", "parent": "родитель", "staff": "сотрудник"}


class StartLink(msgspec.Struct, frozen=True):
    journal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class LinksApi:
    def __init__(self, linking: LinkingService, auth: AuthService, settings: Settings) -> None:
        self._linking = linking
        self._auth = auth
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("GET", "/api/v1/link", self.land)
        router.add("GET", "/link/{pending_id}", self.confirm_page)
        router.add("GET", "/api/v1/links/pending/{pending_id}", self.pending)
        router.add("POST", "/api/v1/links/pending/{pending_id}/confirm", self.confirm)
        router.add("POST", "/api/v1/links/start", self.start)
        router.add("GET", "/api/v1/links", self.list)
        router.add("DELETE", "/api/v1/links/{journal_id}", self.unlink)

    async def land(self, request: Request) -> Response:
        """The journal's "link educational profile" button ends here (HTML, not JSON)."""
        assertion = request.query_value("assertion")
        if not assertion:
            return _refused("Журнал не передал данные для привязки.")
        try:
            pending_id = await self._linking.land(
                assertion, request.query_value("state"), request.cookies.get(STATE_COOKIE)
            )
        except LinkRefused as refused:
            return _refused(refused.reason)
        response = Response(303, headers=[("Location", f"/link/{pending_id}")])
        if request.query_value("state"):
            response.headers.append(
                (
                    "Set-Cookie",
                    f"{STATE_COOKIE}=; Path=/api/v1/link; HttpOnly; SameSite=Lax; Max-Age=0",
                )
            )
        return response

    async def pending(self, request: Request) -> Response:
        view = await self._linking.view(request.params["pending_id"])
        person = view.person
        return Response.json(
            {
                "journal": {"id": view.journal.id, "name": view.journal.name},
                "person": {
                    "last_name": person.last_name,
                    "first_name": person.first_name,
                    "middle_name": person.middle_name,
                    "schools": [{"name": n, "role": r} for n, r in person.schools],
                },
                "expires_at": view.pending.expires_at,
            }
        )

    async def confirm(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        return_url = await self._linking.confirm(request.params["pending_id"], account_id)
        return Response.json({"return_url": return_url})

    async def start(self, request: Request) -> Response:
        await require_account(request, self._auth, self._settings)
        body = parse_body(request, StartLink)
        url, state = await self._linking.start(
            body.journal_id, f"{self._settings.base_url}/api/v1/link"
        )
        secure = "; Secure" if self._settings.secure_cookies else ""
        cookie = f"{STATE_COOKIE}={state}; Path=/api/v1/link; HttpOnly; SameSite=Lax; Max-Age=900"
        return Response.json({"url": url}, headers=[("Set-Cookie", cookie + secure)])

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        links = await self._linking.links(account_id)
        return Response.json(
            {
                "links": [
                    {
                        "journal": {
                            "id": journal.id,
                            "name": journal.name,
                            "region": journal.region_name,
                        },
                        "person": {
                            "last_name": person.last_name,
                            "first_name": person.first_name,
                            "middle_name": person.middle_name,
                        },
                    }
                    for journal, person in links
                ]
            }
        )

    async def unlink(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        await self._linking.unlink(account_id, request.params["journal_id"])
        return Response(204)

    async def confirm_page(self, request: Request) -> Response:
        """Until the web client serves /link/…: sign in (or create the profile), see whom
        you link as, confirm. The page talks to the JSON API above."""
        try:
            view = await self._linking.view(request.params["pending_id"])
        except Exception:
            return _refused("Запрос на привязку устарел. Вернитесь в журнал и начните снова.")
        person = view.person
        name = " ".join(p for p in (person.last_name, person.first_name, person.middle_name) if p)
        roles = ", ".join(f"{ROLES.get(r, r)}, {s}" for s, r in person.schools)
        body = (
            f"<p>Журнал <b>{escape(view.journal.name)}</b> просит привязать ваш учебный профиль"
            f" к учётной записи <b>{escape(name)}</b> ({escape(roles)}).</p>"
            '<div id="signin" hidden><h2>Вход</h2>'
            '<p class="muted">Не регистрируйте профиль ребёнка на номер родителя: у каждого'
            " свой телефон и свой профиль.</p>"
            '<label>Телефон <input id="phone" type="tel" autocomplete="tel"></label>'
            '<button id="send">Получить код</button>'
            '<label>Код из SMS <input id="code" inputmode="numeric" autocomplete="one-time-code">'
            '</label><button id="verify">Войти</button></div>'
            '<div id="profile" hidden><h2>Учебный профиль</h2>'
            '<label>Фамилия <input id="last_name"></label>'
            '<label>Имя <input id="first_name"></label>'
            '<label>Отчество (если есть) <input id="middle_name"></label>'
            '<label>Дата рождения <input id="birth_date" type="date"></label>'
            '<label>Пол <select id="sex"><option value="female">женский</option>'
            '<option value="male">мужской</option></select></label>'
            '<button id="create">Создать профиль</button></div>'
            '<div id="confirm" hidden><button id="link">Подтвердить привязку</button></div>'
            '<p id="error" class="error" role="alert"></p>'
        )
        script = _CONFIRM_JS.replace("PENDING", escape(request.params["pending_id"]))
        return page("Привязка учебного профиля", body, script=script)


def _refused(reason: str) -> Response:
    return page(
        "Привязка не удалась",
        f'<p>{escape(reason)}</p><p class="muted">Ничего не изменилось.</p>',
        status=400,
    )


_CONFIRM_JS = """
const $ = id => document.getElementById(id);
const show = which => ["signin", "profile", "confirm"].forEach(
  id => $(id).hidden = id !== which);
async function call(method, path, body) {
  const response = await fetch(path, {method, credentials: "same-origin",
    headers: body ? {"content-type": "application/json"} : {},
    body: body ? JSON.stringify(body) : undefined});
  const data = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(data.detail || data.code || response.status);
  return data;
}
async function next() {
  try { await call("GET", "/api/v1/profile"); show("confirm"); }
  catch (e) { show(String(e.message).includes("profile") ? "profile" : "signin"); }
}
const guard = fn => async () => { $("error").textContent = "";
  try { await fn(); } catch (e) { $("error").textContent = e.message; } };
$("send").onclick = guard(() => call("POST", "/api/v1/auth/code", {phone: $("phone").value}));
$("verify").onclick = guard(async () => {
  await call("POST", "/api/v1/auth/verify", {phone: $("phone").value, code: $("code").value});
  await next(); });
$("create").onclick = guard(async () => {
  await call("POST", "/api/v1/profile", {last_name: $("last_name").value,
    first_name: $("first_name").value, middle_name: $("middle_name").value || null,
    birth_date: $("birth_date").value, sex: $("sex").value});
  show("confirm"); });
$("link").onclick = guard(async () => {
  const done = await call("POST", "/api/v1/links/pending/PENDING/confirm");
  location.href = done.return_url; });
next();
"""
