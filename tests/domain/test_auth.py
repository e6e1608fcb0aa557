"""Sign-in rules with an injected clock, on both databases."""

from __future__ import annotations

import pytest

from protocol.errors import ErrorCode
from server.config import Limits
from server.domain.auth import AuthService, ProfileInput, normalize_phone
from server.domain.errors import DomainError
from server.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone: str, text: str, code: str) -> None:
        assert code in text
        self.sent.append((phone, code))

    def last(self) -> str:
        return self.sent[-1][1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def auth(store: Store, clock: Clock, outbox: Outbox) -> AuthService:
    limits = Limits(codes_per_ip_per_hour=8, verifies_per_ip_per_minute=20)
    return AuthService(store, outbox, b"k" * 32, limits, clock)


PHONE = "+7 (912) 345-67-89"


async def expect(code: ErrorCode, awaitable: object) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.code is code
    return caught.value


def test_phones_are_normalised_to_e164() -> None:
    assert normalize_phone("8 912 345 67 89") == "+79123456789"
    assert normalize_phone("+7 (912) 345-67-89") == "+79123456789"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    for bad in ("123", "+7 000", "hello", ""):
        with pytest.raises(DomainError):
            normalize_phone(bad)


async def test_a_code_signs_in_and_creates_one_account(auth: AuthService, outbox: Outbox) -> None:
    sent = await auth.request_code(PHONE, "10.0.0.1")
    assert sent.phone == "+79123456789"
    first = await auth.verify(PHONE, outbox.last(), "10.0.0.1")
    assert not first.has_profile
    assert await auth.authenticate(first.token) == first.account_id
    await expect(ErrorCode.CODE_INVALID, auth.verify(PHONE, outbox.last(), "10.0.0.1"))


async def test_codes_expire_after_five_minutes(
    auth: AuthService, outbox: Outbox, clock: Clock
) -> None:
    await auth.request_code(PHONE, "ip")
    clock.advance(301)
    await expect(ErrorCode.CODE_EXPIRED, auth.verify(PHONE, outbox.last(), "ip"))


async def test_five_wrong_codes_burn_the_code(auth: AuthService, outbox: Outbox) -> None:
    await auth.request_code(PHONE, "ip")
    right = outbox.last()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        await expect(ErrorCode.CODE_INVALID, auth.verify(PHONE, wrong, "ip"))
    await expect(ErrorCode.TOO_MANY_ATTEMPTS, auth.verify(PHONE, right, "ip"))
    await expect(ErrorCode.CODE_INVALID, auth.verify(PHONE, "12ab56", "ip"))


async def test_resend_waits_for_the_cooldown_and_the_hourly_cap(
    auth: AuthService, outbox: Outbox, clock: Clock
) -> None:
    await auth.request_code(PHONE, "ip")
    error = await expect(ErrorCode.RESEND_TOO_SOON, auth.request_code(PHONE, "ip"))
    assert error.retry_after_s == 60
    for _ in range(4):
        clock.advance(61)
        await auth.request_code(PHONE, "ip")
    clock.advance(61)
    capped = await expect(ErrorCode.RATE_LIMITED, auth.request_code(PHONE, "ip"))
    assert capped.retry_after_s is not None and 0 < capped.retry_after_s <= 3600
    clock.advance(3600)
    await auth.request_code(PHONE, "ip")  # a new hour
    assert len(outbox.sent) == 6


async def test_one_address_cannot_spray_codes(auth: AuthService) -> None:
    for i in range(8):
        await auth.request_code(f"+7912000000{i}", "203.0.113.5")
    await expect(ErrorCode.RATE_LIMITED, auth.request_code("+79120000009", "203.0.113.5"))
    await auth.request_code("+79120000009", "203.0.113.6")


async def test_logout_ends_one_session_or_all(
    auth: AuthService, outbox: Outbox, clock: Clock
) -> None:
    await auth.request_code(PHONE, "ip")
    laptop = await auth.verify(PHONE, outbox.last(), "ip")
    clock.advance(61)
    await auth.request_code(PHONE, "ip")
    phone = await auth.verify(PHONE, outbox.last(), "ip")
    clock.advance(61)
    await auth.request_code(PHONE, "ip")
    tablet = await auth.verify(PHONE, outbox.last(), "ip")
    await auth.logout(laptop.token, everywhere=False)
    assert await auth.authenticate(laptop.token) is None
    assert await auth.authenticate(phone.token) == phone.account_id
    await auth.logout(phone.token, everywhere=True)
    assert await auth.authenticate(tablet.token) is None


async def test_profile_rules(auth: AuthService, outbox: Outbox) -> None:
    await auth.request_code(PHONE, "ip")
    signed = await auth.verify(PHONE, outbox.last(), "ip")
    await expect(ErrorCode.PROFILE_REQUIRED, auth.profile(signed.account_id))
    bad = await expect(
        ErrorCode.VALIDATION_FAILED,
        auth.create_profile(signed.account_id, ProfileInput(" ", "Ан7на", "2100-01-01", "x")),
    )
    assert {e.field for e in bad.errors} == {"last_name", "first_name", "birth_date", "sex"}
    good = ProfileInput("  Салтыкова-Щедрина ", "Анна", "2012-09-01", "female", "Ивановна")
    created = await auth.create_profile(signed.account_id, good)
    assert (created.last_name, created.middle_name) == ("Салтыкова-Щедрина", "Ивановна")
    assert await auth.profile(signed.account_id) == created
    await expect(ErrorCode.PROFILE_EXISTS, auth.create_profile(signed.account_id, good))
    after = await auth.session(signed.token)
    assert after == (signed.account_id, True)


class FailingGateway:
    """An SMS gateway that is down until told otherwise."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.down = True

    async def send(self, phone: str, text: str, code: str) -> None:
        if self.down:
            raise ConnectionRefusedError("gateway down")
        await self.outbox.send(phone, text, code)


async def test_a_code_the_gateway_could_not_send_holds_nothing_back(
    store: Store, outbox: Outbox, clock: Clock
) -> None:
    gateway = FailingGateway(outbox)
    auth = AuthService(store, gateway, b"k" * 32, Limits(codes_per_phone_per_hour=2), clock)
    failed = await expect(ErrorCode.UNAVAILABLE, auth.request_code(PHONE, "ip"))
    assert failed.retry_after_s is not None and failed.retry_after_s <= 60
    # No cooldown from the code that never left: the next try goes out at once.
    gateway.down = False
    await auth.request_code(PHONE, "ip")
    # A failure after it leaves the code that did arrive usable,
    clock.advance(61)
    gateway.down = True
    await expect(ErrorCode.UNAVAILABLE, auth.request_code(PHONE, "ip"))
    assert (await auth.verify(PHONE, outbox.last(), "ip")).token
    # and failures do not count toward the hourly cap of two codes.
    gateway.down = False
    clock.advance(61)
    await auth.request_code(PHONE, "ip")
    clock.advance(61)
    await expect(ErrorCode.RATE_LIMITED, auth.request_code(PHONE, "ip"))
    assert len(outbox.sent) == 2
