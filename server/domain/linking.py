"""Linking an educational profile to a journal account (after an LTI 1.3 launch).

The journal signs a short-lived assertion (HS256 with its signing secret: ``iss`` the
journal, ``sub`` the person's journal user id, ``aud`` "parta", ``exp`` at most 10 minutes
ahead, a single-use ``jti``, a ``return_url`` on the journal's own origin). The landing
checks it without consuming it and keeps a pending link; only the person's confirmation,
signed in, consumes the ``jti`` and stores the link. Linking can also start in Parta: the
person picks a journal, goes there with a ``state`` bound to a cookie, and comes back with
an assertion and the same ``state``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt

from protocol.errors import ErrorCode
from server.domain.chats import ChatService
from server.domain.clock import Clock
from server.domain.errors import DomainError
from server.store import Store
from server.store.journals import Journal, PendingLink, Person

AUDIENCE = "parta"
MAX_LIFETIME_S = 600
LEEWAY_S = 30


class LinkRefused(Exception):
    """The assertion cannot start a link: ``reason`` is shown to the person (Russian)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PendingView:
    pending: PendingLink
    journal: Journal
    person: Person


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class LinkingService:
    def __init__(self, store: Store, chats: ChatService, secret: bytes, clock: Clock) -> None:
        self._store = store
        self._chats = chats
        self._secret = secret
        self._clock = clock

    # --- the journal sends the person here -----------------------------------------------

    async def land(self, assertion: str, state: str | None, state_cookie: str | None) -> str:
        """Check an assertion and keep a pending link; its id. Nothing is consumed."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise LinkRefused("Ссылка повреждена: журнал прислал неверные данные.") from None
        issuer = unverified.get("iss")
        journal = await self._store.journals.get(issuer) if isinstance(issuer, str) else None
        if journal is None:
            raise LinkRefused("Журнал, приславший ссылку, не подключён к этому серверу.")
        try:
            claims = jwt.decode(
                assertion,
                journal.signing_secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=journal.id,
                # Expiry is checked below against our clock (the rules' time).
                options={"require": ["exp", "iss", "aud", "sub", "jti"], "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            raise LinkRefused("Ссылка предназначена не для этого сервера.") from None
        except jwt.PyJWTError:
            raise LinkRefused("Подпись ссылки не прошла проверку.") from None
        now_s = self._clock() / 1000
        expires = claims["exp"]
        if (
            not isinstance(expires, (int, float))
            or not math.isfinite(expires)
            or expires < now_s - LEEWAY_S
        ):
            raise LinkRefused("Ссылка устарела. Вернитесь в журнал и нажмите кнопку ещё раз.")
        if expires > now_s + MAX_LIFETIME_S + LEEWAY_S:
            raise LinkRefused("Ссылка выдана на слишком долгий срок.")
        return_url = claims.get("return_url")
        if not isinstance(return_url, str) or _origin(return_url) != _origin(journal.link_url):
            raise LinkRefused("Адрес возврата не принадлежит журналу.")
        subject, jti = str(claims["sub"]), str(claims["jti"])
        # Only a state that came back is checked: a stale cookie from a linking someone gave
        # up on must not block the journal's own "link" button.
        if state is not None:
            self._check_state(state, state_cookie, journal.id)
        if await self._store.journals.jti_used(journal.id, jti):
            raise LinkRefused("Эта ссылка уже использована. Вернитесь в журнал и начните снова.")
        if await self._store.journals.person(journal.id, subject) is None:
            raise LinkRefused("Журнал ещё не передал данные об этом пользователе.")
        pending = PendingLink(
            id=secrets.token_urlsafe(18),
            journal_id=journal.id,
            ext_user_id=subject,
            jti=jti,
            return_url=return_url,
            expires_at=int(claims["exp"] * 1000),
        )
        await self._store.journals.add_pending(pending, self._clock())
        return pending.id

    async def view(self, pending_id: str) -> PendingView:
        pending = await self._store.journals.pending(pending_id)
        if pending is None or pending.expires_at < self._clock():
            raise DomainError(ErrorCode.NOT_FOUND, "this link request expired; start again")
        journal = await self._store.journals.get(pending.journal_id)
        person = await self._store.journals.person(pending.journal_id, pending.ext_user_id)
        if journal is None or person is None:
            raise DomainError(ErrorCode.NOT_FOUND, "the journal or the person is gone")
        return PendingView(pending, journal, person)

    async def confirm(self, pending_id: str, account_id: int) -> str:
        """The signed-in person confirms: consume the assertion, store the link, join the
        person's chats. Returns where the browser goes next (the journal's return URL)."""
        if await self._store.accounts.get_profile(account_id) is None:
            raise DomainError(ErrorCode.PROFILE_REQUIRED, "create your educational profile first")
        view = await self.view(pending_id)
        refused = await self._store.journals.link(
            view.pending, view.person.id, account_id, self._clock()
        )
        if refused == "used":
            raise DomainError(ErrorCode.CONFLICT, "this link was used already")
        if refused == "person":
            raise DomainError(
                ErrorCode.CONFLICT, "this journal account is linked to another profile"
            )
        if refused == "account":
            raise DomainError(
                ErrorCode.CONFLICT, "your profile is linked to another account of this journal"
            )
        await self._chats.sync_roster(
            await self._store.journal_chats.roster_chats_of(view.person.id)
        )
        return view.pending.return_url

    # --- linking that starts in Parta -----------------------------------------------------

    def _state(self, journal_id: str, nonce: str) -> str:
        mac = hmac.new(self._secret, f"link:{journal_id}:{nonce}".encode(), hashlib.sha256)
        return f"{nonce}.{mac.hexdigest()[:32]}"

    def _check_state(self, state: str | None, cookie: str | None, journal_id: str) -> None:
        if not state or not cookie or not hmac.compare_digest(state, cookie):
            raise LinkRefused("Привязка начата в другом окне или устарела. Начните снова.")
        nonce, _, _ = state.partition(".")
        if not hmac.compare_digest(state, self._state(journal_id, nonce)):
            raise LinkRefused("Привязка начата для другого журнала. Начните снова.")

    async def start(self, journal_id: str, return_url: str) -> tuple[str, str]:
        """Where to send the browser (the journal's link page) and the state for its cookie."""
        journal = await self._store.journals.get(journal_id)
        if journal is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no journal {journal_id!r}")
        state = self._state(journal.id, secrets.token_urlsafe(12))
        separator = "&" if "?" in journal.link_url else "?"
        query = urlencode({"state": state, "return_url": return_url})
        return f"{journal.link_url}{separator}{query}", state

    # --- what a person has linked -----------------------------------------------------------

    async def links(self, account_id: int) -> list[tuple[Journal, Person, int]]:
        return await self._store.journals.links_of(account_id)

    async def unlink(self, account_id: int, journal_id: str) -> None:
        person_id = await self._store.journals.unlink(account_id, journal_id)
        if person_id is None:
            raise DomainError(ErrorCode.NOT_FOUND, "no link to that journal")
        await self._chats.sync_roster(await self._store.journal_chats.roster_chats_of(person_id))
