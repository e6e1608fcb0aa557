"""Sign-in by phone and one-time code, sessions, and the educational profile."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
from dataclasses import dataclass

import phonenumbers

from protocol.errors import ErrorCode
from server.config import Limits
from server.domain.clock import Clock
from server.domain.errors import DomainError, FieldError
from server.domain.ratelimit import RateLimiter
from server.security import hash_code, hash_token, new_code, new_token
from server.sms import SmsSender
from server.store import Store
from server.store.accounts import Profile, SignInCode

logger = logging.getLogger("parta.auth")

# When the SMS gateway failed: a hint to try again soon, not a wait the server enforces.
SMS_RETRY_AFTER_S = 10

HOUR_MS = 3_600_000
DEFAULT_REGION = "RU"
NAME_MAX = 60
SEXES = ("male", "female")
# fromisoformat also takes 20110901 and week dates; the contract says YYYY-MM-DD.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class CodeSent:
    phone: str
    resend_after_s: int
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    account_id: int
    has_profile: bool


@dataclass(frozen=True, slots=True)
class ProfileInput:
    last_name: str
    first_name: str
    birth_date: str
    sex: str
    middle_name: str | None = None


def normalize_phone(raw: str) -> str:
    """E.164, or ``invalid_phone``. Numbers without a country code are read as Russian."""
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise DomainError(ErrorCode.INVALID_PHONE, f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _check_name(
    field: str, value: str | None, required: bool
) -> tuple[str | None, FieldError | None]:
    value = " ".join((value or "").split())
    if not value:
        return None, FieldError(field, "обязательное поле") if required else None
    if len(value) > NAME_MAX:
        return None, FieldError(field, f"не длиннее {NAME_MAX} символов")
    if not value[0].isalpha() or not all(c.isalpha() or c in " -'’" for c in value):
        return None, FieldError(field, "только буквы, пробел, дефис и апостроф")
    return value, None


def validate_profile(data: ProfileInput, today: dt.date) -> ProfileInput:
    errors: list[FieldError] = []
    last, err = _check_name("last_name", data.last_name, True)
    errors += [err] if err else []
    first, err = _check_name("first_name", data.first_name, True)
    errors += [err] if err else []
    middle, err = _check_name("middle_name", data.middle_name, False)
    errors += [err] if err else []
    try:
        if not _ISO_DATE.fullmatch(data.birth_date):
            raise ValueError(data.birth_date)
        born = dt.date.fromisoformat(data.birth_date)
    except ValueError:
        errors.append(FieldError("birth_date", "дата в формате ГГГГ-ММ-ДД"))
    else:
        if not dt.date(1900, 1, 1) <= born <= today:
            errors.append(FieldError("birth_date", "дата рождения вне допустимого диапазона"))
    if data.sex not in SEXES:
        errors.append(FieldError("sex", "male или female"))
    if errors:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "профиль заполнен неверно", errors=tuple(errors)
        )
    assert last is not None and first is not None
    return ProfileInput(last, first, data.birth_date, data.sex, middle)


class AuthService:
    def __init__(
        self, store: Store, sms: SmsSender, secret: bytes, limits: Limits, clock: Clock
    ) -> None:
        self._store = store
        self._sms = sms
        self._secret = secret
        self._limits = limits
        self._clock = clock
        self._codes_per_ip = RateLimiter(limits.codes_per_ip_per_hour, HOUR_MS, clock)
        self._verifies_per_ip = RateLimiter(limits.verifies_per_ip_per_minute, 60_000, clock)

    async def request_code(self, raw_phone: str, client_ip: str) -> CodeSent:
        phone = normalize_phone(raw_phone)
        now = self._clock()
        limits = self._limits
        previous = await self._store.accounts.get_code(phone)
        if previous is not None:
            wait_ms = previous.sent_at + limits.code_resend_after_s * 1000 - now
            if wait_ms > 0:
                raise DomainError(
                    ErrorCode.RESEND_TOO_SOON,
                    "a code was sent recently; wait before asking again",
                    retry_after_s=(wait_ms + 999) // 1000,
                )
        window_start, sent = now, 1
        if previous is not None and now - previous.window_started_at < HOUR_MS:
            window_start, sent = previous.window_started_at, previous.sent_in_window + 1
            if sent > limits.codes_per_phone_per_hour:
                raise DomainError(
                    ErrorCode.RATE_LIMITED,
                    "too many codes for this phone; try again later",
                    retry_after_s=(window_start + HOUR_MS - now + 999) // 1000,
                )
        retry = self._codes_per_ip.hit(client_ip)
        if retry is not None:
            raise DomainError(
                ErrorCode.RATE_LIMITED, "too many codes from this address", retry_after_s=retry
            )
        code = new_code()
        await self._store.accounts.put_code(
            SignInCode(
                phone=phone,
                code_hash=hash_code(self._secret, phone, code),
                expires_at=now + limits.code_ttl_s * 1000,
                attempts=0,
                sent_at=now,
                window_started_at=window_start,
                sent_in_window=sent,
            )
        )
        try:
            await self._sms.send(phone, f"Parta: код входа {code}. Никому его не сообщайте.", code)
        except Exception as exc:
            # Nothing reached the person: neither the resend cooldown nor the hourly count
            # may hold back their next try (the per-address limit still counts it).
            logger.warning("sms not sent", extra={"error": repr(exc)})
            if previous is None:
                await self._store.accounts.delete_code(phone)
            else:
                await self._store.accounts.put_code(previous)
            raise DomainError(
                ErrorCode.UNAVAILABLE,
                "the SMS could not be sent; try again shortly",
                retry_after_s=SMS_RETRY_AFTER_S,
            ) from None
        return CodeSent(phone, limits.code_resend_after_s, limits.code_ttl_s)

    async def verify(self, raw_phone: str, code: str, client_ip: str) -> SignedIn:
        phone = normalize_phone(raw_phone)
        retry = self._verifies_per_ip.hit(client_ip)
        if retry is not None:
            raise DomainError(ErrorCode.RATE_LIMITED, "too many attempts", retry_after_s=retry)
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise DomainError(ErrorCode.CODE_INVALID, "the code is 6 digits")
        taken = await self._store.accounts.take_attempt(phone, self._limits.code_attempts)
        if taken is None:
            current = await self._store.accounts.get_code(phone)
            if current is not None and current.code_hash:
                raise DomainError(
                    ErrorCode.TOO_MANY_ATTEMPTS, "too many wrong codes; ask for a new one"
                )
            raise DomainError(ErrorCode.CODE_INVALID, "no code is waiting; ask for a new one")
        stored_hash, expires_at = taken
        now = self._clock()
        if expires_at <= now:
            raise DomainError(ErrorCode.CODE_EXPIRED, "the code has expired; ask for a new one")
        given_hash = hash_code(self._secret, phone, code)
        if not hmac.compare_digest(given_hash, stored_hash):
            raise DomainError(ErrorCode.CODE_INVALID, "wrong code")
        token = new_token()
        signed_in = await self._store.accounts.sign_in(phone, given_hash, hash_token(token), now)
        if signed_in is None:
            raise DomainError(ErrorCode.CODE_INVALID, "the code was used already")
        account_id, has_profile = signed_in
        logger.info("signed in", extra={"account_id": account_id})
        return SignedIn(token, account_id, has_profile)

    async def open_session(self, account_id: int) -> str:
        """A new session for an account someone vouched for (a journal's join ticket)."""
        token = new_token()
        await self._store.accounts.create_session(account_id, hash_token(token), self._clock())
        return token

    async def session(self, token: str) -> tuple[int, bool] | None:
        """(account id, has profile) for a live session token, else None."""
        if not token or len(token) > 200:
            return None
        return await self._store.accounts.session(
            hash_token(token), self._clock(), self._limits.session_idle_days * 86_400_000
        )

    async def authenticate(self, token: str) -> int | None:
        session = await self.session(token)
        return None if session is None else session[0]

    async def logout(self, token: str, *, everywhere: bool) -> None:
        account_id = await self.authenticate(token)
        if account_id is None:
            return
        if everywhere:
            await self._store.accounts.end_all_sessions(account_id)
        else:
            await self._store.accounts.end_session(hash_token(token))

    async def create_profile(self, account_id: int, data: ProfileInput) -> Profile:
        today = dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC).date()
        clean = validate_profile(data, today)
        profile = Profile(
            account_id=account_id,
            last_name=clean.last_name,
            first_name=clean.first_name,
            middle_name=clean.middle_name,
            birth_date=clean.birth_date,
            sex=clean.sex,
        )
        if not await self._store.accounts.create_profile(profile, self._clock()):
            raise DomainError(ErrorCode.PROFILE_EXISTS, "this account has a profile already")
        return profile

    async def profile(self, account_id: int) -> Profile:
        found = await self._store.accounts.get_profile(account_id)
        if found is None:
            raise DomainError(ErrorCode.PROFILE_REQUIRED, "create your educational profile first")
        return found
