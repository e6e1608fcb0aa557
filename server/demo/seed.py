"""Seeding the demo school, as a journal would, once the server listens.

The demo journal is registered once (its credentials kept in ``<data dir>/demo-journal.json``)
and then pushes its roster and the week's timetable through the HTTP Journal API of the
running server, like any journal. A few people are then made ready to sign in: an account
with the educational profile straight in the store (an operator's shortcut, like
``parta loadtest-users``) and linked through the linking rules with a signed assertion.
Every step finds what an earlier run made and leaves it be.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import phonenumbers

from server.demo import school
from server.demo.journal_api import JournalApi, assertion
from server.demo.school import DemoPerson
from server.domain.clock import system_clock
from server.domain.errors import DomainError
from server.domain.journals import JournalService
from server.domain.linking import LinkingService
from server.security import hash_token, new_token
from server.store import IntegrityError, Store
from server.store.accounts import Profile

CREDENTIALS_FILE = "demo-journal.json"
REGION_CODE = "demo"
REGION_NAME = "Демо-регион"
JOURNAL_NAME = "Демо-журнал"
RULE = "=" * 72


class DemoCredentials(msgspec.Struct, frozen=True):
    journal_id: str
    api_token: str
    signing_secret: str


@dataclass(frozen=True, slots=True)
class Registered:
    credentials: DemoCredentials
    # the link URL Parta has for the demo journal (it may be from an earlier address)
    link_url: str
    new: bool


@dataclass(frozen=True, slots=True)
class ReadyPerson:
    person: DemoPerson
    phone: str
    # "made" now, "ready" from an earlier run, or "taken": the phone has an account that
    # is not linked to this person (it signed in before the demo linked it, or unlinked)
    status: str


@dataclass(frozen=True, slots=True)
class Seeded:
    registered: Registered
    roster: dict[str, Any]
    schedule: dict[str, int]
    week: tuple[dt.date, dt.date]
    people: list[ReadyPerson]


def _save(path: Path, credentials: DemoCredentials) -> None:
    """Written only by the server, readable only by its user: it holds the API token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(credentials)) + b"\n")
    temporary.replace(path)


async def register_journal(
    data_dir: Path, store: Store, journals: JournalService, link_url: str
) -> Registered:
    """The demo journal's credentials: those kept in the data dir if Parta still knows the
    journal (a new token and secret if they were rotated), else a journal registered now."""
    path = data_dir / CREDENTIALS_FILE
    kept: DemoCredentials | None = None
    if path.exists():
        kept = msgspec.json.decode(path.read_bytes(), type=DemoCredentials)
    journal = None if kept is None else await store.journals.get(kept.journal_id)
    if kept is not None and journal is not None:
        try:
            await journals.authenticate(kept.api_token)
        except DomainError:
            rotated = await journals.rotate(kept.journal_id)
            kept = DemoCredentials(rotated.journal_id, rotated.api_token, rotated.signing_secret)
            _save(path, kept)
        return Registered(kept, journal.link_url, new=False)
    made = await journals.add(REGION_CODE, REGION_NAME, JOURNAL_NAME, link_url, None)
    credentials = DemoCredentials(made.journal_id, made.api_token, made.signing_secret)
    _save(path, credentials)
    return Registered(credentials, link_url, new=True)


async def push_school(api: JournalApi, today: dt.date) -> tuple[dict[str, Any], dict[str, int]]:
    """The roster, then the week of lessons around ``today``: what the journal sends nightly."""
    roster = await api.put_roster(school.roster())
    schedule = await api.put_schedule(school.schedule(today))
    return roster, schedule


async def ready_to_sign_in(
    store: Store, linking: LinkingService, registered: Registered
) -> list[ReadyPerson]:
    """Accounts with their educational profiles, linked to their journal people."""
    credentials = registered.credentials
    ready: list[ReadyPerson] = []
    for ext_id, phone in school.SIGN_IN:
        person = school.PEOPLE[ext_id]
        found = await store.journals.person(credentials.journal_id, ext_id)
        if found is None:
            raise RuntimeError(f"the roster did not reach Parta: no person {ext_id!r}")
        if await store.journals.linked_account(found.id) is not None:
            ready.append(ReadyPerson(person, phone, "ready"))
            continue
        profile = Profile(
            0,
            person.last_name,
            person.first_name,
            person.middle_name,
            person.birth_date,
            person.sex,
        )
        try:
            # The operator's bulk path also opens a session: its token is dropped unseen.
            [account_id] = await store.accounts.create_accounts_with_profiles(
                [(phone, profile)], [hash_token(new_token())], system_clock()
            )
        except IntegrityError:
            ready.append(ReadyPerson(person, phone, "taken"))
            continue
        # Returned to nobody: any address on the journal's registered origin will do.
        signed = assertion(
            credentials.journal_id, credentials.signing_secret, ext_id, registered.link_url
        )
        pending = await linking.land(signed, None, None)
        await linking.confirm(pending, account_id)
        ready.append(ReadyPerson(person, phone, "made"))
    return ready


def pretty_phone(phone: str) -> str:
    number = phonenumbers.parse(phone)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def _counts(counts: dict[str, Any]) -> str:
    """``{"created": {"users": 40, …}, …}`` as one line: totals per change."""
    totals = {
        key: sum(value.values()) if isinstance(value, dict) else int(value)
        for key, value in counts.items()
    }
    if not any(totals.values()):
        return "без изменений"
    return ", ".join(f"{name} {totals.get(key, 0)}" for key, name in _COUNT_NAMES) + " записей"


_COUNT_NAMES = (("created", "создано"), ("updated", "изменено"), ("removed", "удалено"))


def report(seeded: Seeded, base_url: str, outbox: Path | None, link_url_now: str) -> list[str]:
    """The block printed after the "listening" line: who can sign in, and how."""
    registered = seeded.registered
    first, last = seeded.week
    lines = [
        RULE,
        f"Parta: демо-школа «{school.SCHOOL_NAME}»"
        f" ({len(school.CLASSES)} класса, {len(school.PEOPLE)} человек)",
        f"Журнал «{JOURNAL_NAME}» {registered.credentials.journal_id}"
        + (" зарегистрирован" if registered.new else " уже был зарегистрирован")
        + "; данные для Journal API в demo-journal.json в каталоге данных.",
        f"Ростер: {_counts(seeded.roster)}.",
        f"Расписание на {first:%d.%m}–{last:%d.%m}: уроков {seeded.schedule.get('created', 0)}.",
        f"Демо-журнал: {base_url}/demo-journal/",
        "",
        "Войти в Parta можно по телефонам:",
    ]
    width = max(len(p.person.full_name) for p in seeded.people)
    for ready in seeded.people:
        line = (
            f"  {pretty_phone(ready.phone)}  {ready.person.full_name:<{width}}"
            f"  {school.describe(ready.person)}"
        )
        if ready.status == "taken":
            line += (
                "  [у телефона уже есть учётная запись без привязки: привяжите её в демо-журнале]"
            )
        lines.append(line)
    lines.append("")
    if outbox is not None:
        lines.append(f"Код входа придёт не по SMS, а строкой в {outbox}")
    else:
        lines.append("Код входа уйдёт через настроенный SMS-шлюз.")
    phone = seeded.people[0].phone
    lines.append(
        f'  (например: curl -X POST {base_url}/api/v1/auth/code -d \'{{"phone":"{phone}"}}\')'
    )
    if registered.link_url != link_url_now:
        lines += [
            "",
            f"Внимание: журнал зарегистрирован с адресом привязки {registered.link_url},",
            f"а сервер сейчас на {link_url_now}: привязка из демо-журнала не пройдёт",
            "проверку адреса возврата. Запустите сервер с прежним адресом (--port/--public-url).",
        ]
    lines += ["Демо: вход в демо-журнал без пароля. Не включайте --demo на рабочем сервере.", RULE]
    return lines
