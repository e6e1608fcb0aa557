"""ICE-lite: binding requests built with aioice's STUN codec (and a tiny raw encoder for the
odd cases aioice will not produce), responses read back with aioice, and a real aioice
controlling agent connecting to ``IceLite`` over loopback UDP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
import zlib
from typing import Any, cast

import aioice
import aioice.ice
import pytest
from aioice import Candidate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.adapter import StunClass, StunMessage, StunMethod, check_pins, parse_stun
from sfu.ice import ICE_CHARS, IceLite, IceResult, new_credentials, stun_local_ufrag

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOCAL_UFRAG = "LoCa"
LOCAL_PWD = "localpassword+local/pwd"
REMOTE_UFRAG = "rEmOtE"
A = ("192.0.2.10", 50000)
B = ("198.51.100.7", 40001)
V6 = ("2001:db8::1", 3478, 0, 0)


def binding_request(
    username: str | None = f"{LOCAL_UFRAG}:{REMOTE_UFRAG}",
    pwd: str | None = LOCAL_PWD,
    *,
    use_candidate: bool = False,
    controlled: bool = False,
    fingerprint: bool = True,
    transaction_id: bytes | None = None,
) -> bytes:
    message = StunMessage(StunMethod.BINDING, StunClass.REQUEST, transaction_id=transaction_id)
    if username is not None:
        message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 0x6E0001FF
    if controlled:
        message.attributes["ICE-CONTROLLED"] = 1
    else:
        message.attributes["ICE-CONTROLLING"] = 0x1234567890ABCDEF
    if use_candidate:
        message.attributes["USE-CANDIDATE"] = None
    if pwd is not None:
        message.add_message_integrity(pwd.encode())
    else:
        message.add_fingerprint()
    data = bytes(message)
    if not fingerprint:
        data = data[:2] + (len(data) - 28).to_bytes(2, "big") + data[4:-8]
    return data


def raw_request(attributes: list[tuple[int, bytes]], pwd: str | None = LOCAL_PWD) -> bytes:
    """An independent STUN encoder: arbitrary attributes, then MESSAGE-INTEGRITY, FINGERPRINT."""
    txid = b"0123456789ab"
    body = b"".join(struct.pack("!HH", t, len(v)) + v + bytes(-len(v) & 3) for t, v in attributes)
    if pwd is not None:
        header = struct.pack("!HHI", 0x0001, len(body) + 24, 0x2112A442) + txid
        body += (
            struct.pack("!HH", 0x0008, 20)
            + hmac.new(pwd.encode(), header + body, hashlib.sha1).digest()
        )
    message = struct.pack("!HHI", 0x0001, len(body) + 8, 0x2112A442) + txid + body
    return message + struct.pack("!HHI", 0x8028, 4, zlib.crc32(message) ^ 0x5354554E)


def new_lite(remote_ufrag: str | None = REMOTE_UFRAG) -> IceLite:
    return IceLite(LOCAL_UFRAG, LOCAL_PWD, remote_ufrag)


def response_of(result: IceResult) -> StunMessage:
    assert result.response is not None
    return parse_stun(result.response)  # checks FINGERPRINT, raises if wrong


def assert_success(result: IceResult, request: bytes, addr: tuple[Any, ...]) -> None:
    response = response_of(result)
    assert response.message_method == StunMethod.BINDING
    assert response.message_class == StunClass.RESPONSE
    assert response.transaction_id == request[8:20]
    assert response.attributes["XOR-MAPPED-ADDRESS"] == (addr[0], addr[1])
    assert response.check_message_integrity(LOCAL_PWD.encode())
    assert "FINGERPRINT" in response.attributes
    assert list(response.attributes)[-2:] == ["MESSAGE-INTEGRITY", "FINGERPRINT"]


def assert_error(result: IceResult, code: int, *, integrity: bool) -> StunMessage:
    response = response_of(result)
    assert response.message_class == StunClass.ERROR
    assert response.error_code == code
    assert "FINGERPRINT" in response.attributes
    assert ("MESSAGE-INTEGRITY" in response.attributes) is integrity
    if integrity:
        assert response.check_message_integrity(LOCAL_PWD.encode())
    assert result.selected is None
    return response


def test_adapter_pins_match_the_installed_versions() -> None:
    check_pins()


# --- credentials -----------------------------------------------------------------------


def test_new_credentials_are_random_ice_chars() -> None:
    pairs = {new_credentials() for _ in range(50)}
    assert len(pairs) == 50
    for ufrag, pwd in pairs:
        assert len(ufrag) >= 4 and len(pwd) >= 22
        assert set(ufrag + pwd) <= set(ICE_CHARS)
        IceLite(ufrag, pwd)  # accepted as they are


@pytest.mark.parametrize(
    ("ufrag", "pwd"),
    [("abc", LOCAL_PWD), (LOCAL_UFRAG, "short"), ("ab:c", LOCAL_PWD), (LOCAL_UFRAG, "é" * 22)],
)
def test_bad_local_credentials_are_refused(ufrag: str, pwd: str) -> None:
    with pytest.raises(ValueError):
        IceLite(ufrag, pwd)


# --- valid checks ----------------------------------------------------------------------


def test_valid_request_gets_success_and_selects_first_address() -> None:
    ice = new_lite()
    request = binding_request()
    result = ice.handle(request, A, 10.0)
    assert_success(result, request, A)
    assert result.selected == A
    assert ice.selected == A
    assert ice.last_consent == 10.0
    assert dict(ice.valid) == {A: 10.0}


def test_ipv6_sender_gets_its_address_back() -> None:
    ice = new_lite()
    request = binding_request()
    result = ice.handle(request, V6, 1.0)
    assert_success(result, request, V6)
    assert result.selected == V6


def test_addresses_are_opaque_beyond_host_and_port() -> None:
    # An ICE-TCP driver may key its connections with more than (host, port).
    ice = new_lite()
    tcp = (*A, "tcp")
    request = binding_request()
    assert_success(ice.handle(request, A, 1.0), request, A)
    assert_success(ice.handle(request, tcp, 2.0), request, A)
    assert dict(ice.valid) == {A: 1.0, tcp: 2.0}
    assert ice.handle(binding_request(use_candidate=True), tcp, 3.0).selected == tcp


def test_unusable_address_gets_no_answer() -> None:
    ice = new_lite()
    assert ice.handle(binding_request(), ("not-an-ip", 1), 0.0) == IceResult()
    assert ice.selected is None and not ice.valid


def test_unknown_remote_ufrag_accepts_any_remote_part() -> None:
    ice = new_lite(remote_ufrag=None)
    for i, remote in enumerate(["x", "someone", "+/+/"]):
        request = binding_request(f"{LOCAL_UFRAG}:{remote}")
        assert_success(ice.handle(request, A, float(i)), request, A)
    assert_error(ice.handle(binding_request(f"{LOCAL_UFRAG}:"), A, 5.0), 401, integrity=False)


def test_comprehension_optional_unknown_attributes_are_ignored() -> None:
    ice = new_lite()
    request = raw_request(
        [
            (0x0006, f"{LOCAL_UFRAG}:{REMOTE_UFRAG}".encode()),
            (0xC057, b"\x00\x01\x00\x0a"),  # GOOG-NETWORK-INFO, as Chrome sends it
            (0x0024, struct.pack("!I", 1)),
        ]
    )
    assert_success(ice.handle(request, A, 0.0), request, A)


def test_attributes_after_message_integrity_are_ignored() -> None:
    ice = new_lite()
    good = raw_request([(0x0006, f"{LOCAL_UFRAG}:{REMOTE_UFRAG}".encode())])
    # Insert an unauthenticated USE-CANDIDATE and an unknown required attribute between
    # MESSAGE-INTEGRITY and FINGERPRINT: neither must count.
    body = good[20:-8] + struct.pack("!HH", 0x0025, 0) + struct.pack("!HH", 0x7777, 0)
    message = good[:2] + (len(body) + 8).to_bytes(2, "big") + good[4:20] + body
    request = message + struct.pack("!HHI", 0x8028, 4, zlib.crc32(message) ^ 0x5354554E)
    ice.handle(binding_request(), B, 0.0)  # B selected first
    result = ice.handle(request, A, 1.0)
    assert_success(result, request, A)
    assert result.selected is None
    assert ice.selected == B


# --- bad checks ------------------------------------------------------------------------


def test_wrong_password_gets_401_without_integrity() -> None:
    ice = new_lite()
    result = ice.handle(binding_request(pwd="another-password-entirely"), A, 0.0)
    assert_error(result, 401, integrity=False)
    assert ice.selected is None and not ice.valid


@pytest.mark.parametrize(
    "username",
    [f"xxxx:{REMOTE_UFRAG}", f"{LOCAL_UFRAG}:other", f"{LOCAL_UFRAG}X:{REMOTE_UFRAG}", LOCAL_UFRAG],
)
def test_wrong_username_gets_401(username: str) -> None:
    ice = new_lite()
    assert_error(ice.handle(binding_request(username), A, 0.0), 401, integrity=False)
    assert ice.selected is None


def test_missing_username_or_integrity_gets_400() -> None:
    ice = new_lite()
    assert_error(ice.handle(binding_request(username=None), A, 0.0), 400, integrity=False)
    assert_error(ice.handle(binding_request(pwd=None), A, 0.0), 400, integrity=False)
    assert ice.selected is None


def test_unknown_comprehension_required_attribute_gets_420() -> None:
    ice = new_lite()
    request = raw_request(
        [(0x0006, f"{LOCAL_UFRAG}:{REMOTE_UFRAG}".encode()), (0x7F01, b"abc"), (0x7F02, b"")]
    )
    result = ice.handle(request, A, 0.0)
    assert_error(result, 420, integrity=True)
    assert result.response is not None
    # UNKNOWN-ATTRIBUTES (0x000A) lists both, padded to 4 bytes; aioice does not decode it.
    assert struct.pack("!HHHH", 0x000A, 4, 0x7F01, 0x7F02) in result.response
    assert ice.selected is None


def test_peer_claiming_controlled_role_gets_487() -> None:
    ice = new_lite()
    assert_error(ice.handle(binding_request(controlled=True), A, 0.0), 487, integrity=True)
    assert ice.selected is None


def test_missing_or_wrong_fingerprint_is_dropped() -> None:
    ice = new_lite()
    assert ice.handle(binding_request(fingerprint=False), A, 0.0) == IceResult()
    request = bytearray(binding_request())
    request[-1] ^= 1
    assert ice.handle(bytes(request), A, 0.0) == IceResult()
    assert ice.selected is None


def test_non_requests_are_dropped() -> None:
    ice = new_lite()
    for message_class in (StunClass.INDICATION, StunClass.RESPONSE, StunClass.ERROR):
        message = StunMessage(StunMethod.BINDING, message_class)
        message.add_message_integrity(LOCAL_PWD.encode())
        assert ice.handle(bytes(message), A, 0.0) == IceResult()
    allocate = StunMessage(StunMethod.ALLOCATE, StunClass.REQUEST)
    allocate.attributes["USERNAME"] = f"{LOCAL_UFRAG}:{REMOTE_UFRAG}"
    allocate.add_message_integrity(LOCAL_PWD.encode())
    assert ice.handle(bytes(allocate), A, 0.0) == IceResult()
    for junk in (b"", b"\x00", b"\x16\xfe\xfd" + bytes(40), b"\x80" + bytes(30), bytes(20)):
        assert ice.handle(junk, A, 0.0) == IceResult()


@hsettings
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_or_select(data: bytes) -> None:
    ice = new_lite()
    result = ice.handle(data, A, 0.0)
    assert result.selected is None
    stun_local_ufrag(data)


@hsettings
@given(st.data())
def test_any_single_byte_change_is_dropped(data: st.DataObject) -> None:
    ice = new_lite()
    request = bytearray(binding_request(use_candidate=True))
    index = data.draw(st.integers(0, len(request) - 1))
    request[index] ^= data.draw(st.integers(1, 255))
    assert ice.handle(bytes(request), A, 0.0) == IceResult()


@hsettings
@given(st.integers(0, 200))
def test_truncated_request_never_raises(cut: int) -> None:
    request = binding_request(use_candidate=True)
    result = new_lite().handle(request[:cut], A, 0.0)
    assert result == IceResult() or cut >= len(request)


# --- selection, consent, restart -------------------------------------------------------


def test_use_candidate_moves_the_selection() -> None:
    ice = new_lite()
    assert ice.handle(binding_request(), A, 1.0).selected == A
    result = ice.handle(binding_request(), B, 2.0)  # valid, not nominated: A stays
    assert result.response is not None and result.selected is None
    assert ice.selected == A
    assert dict(ice.valid) == {A: 1.0, B: 2.0}
    assert ice.last_consent == 1.0  # only the selected address refreshes consent
    assert ice.handle(binding_request(use_candidate=True), B, 3.0).selected == B
    assert ice.selected == B and ice.last_consent == 3.0
    assert ice.handle(binding_request(use_candidate=True), B, 4.0).selected is None
    assert ice.handle(binding_request(use_candidate=True), A, 5.0).selected == A


def test_use_candidate_on_first_check_selects() -> None:
    ice = new_lite()
    assert ice.handle(binding_request(use_candidate=True), B, 0.0).selected == B


def test_consent_expires_without_fresh_checks() -> None:
    ice = new_lite()
    assert not ice.expired(1000.0)  # never connected: not ours to judge
    ice.handle(binding_request(), A, 100.0)
    assert not ice.expired(129.0)
    assert ice.expired(130.5)
    ice.handle(binding_request(), B, 125.0)  # another address does not keep A alive
    assert ice.expired(130.5)
    ice.handle(binding_request(), A, 128.0)
    assert not ice.expired(130.5)
    assert ice.expired(140.0, timeout=10.0)
    # A failed check does not refresh consent either.
    ice.handle(binding_request(pwd="not-the-password-at-all"), A, 150.0)
    assert ice.last_consent == 128.0


def test_restart_switches_credentials_and_keeps_the_selection() -> None:
    ice = new_lite()
    ice.handle(binding_request(), A, 1.0)
    ice.handle(binding_request(), B, 2.0)
    new_ufrag, new_pwd = new_credentials()
    ice.restart(new_ufrag, new_pwd, remote_ufrag="newremote")
    assert ice.local_ufrag == new_ufrag and ice.local_pwd == new_pwd
    assert ice.selected == A and ice.last_consent == 1.0
    assert dict(ice.valid) == {A: 1.0}
    assert_error(ice.handle(binding_request(), A, 3.0), 401, integrity=False)

    fresh = binding_request(f"{new_ufrag}:newremote", new_pwd)
    result = ice.handle(fresh, B, 4.0)
    response = response_of(result)
    assert response.check_message_integrity(new_pwd.encode())
    assert result.selected is None and ice.selected == A  # no nomination yet
    nominated = binding_request(f"{new_ufrag}:newremote", new_pwd, use_candidate=True)
    assert ice.handle(nominated, B, 5.0).selected == B
    assert ice.last_consent == 5.0


def test_restart_before_anything_was_selected() -> None:
    ice = new_lite()
    ice.handle(binding_request(pwd="wrong-password-wrong-pwd"), A, 0.0)
    ice.restart(*new_credentials())
    assert ice.selected is None and not ice.valid


def test_discard_forgets_an_address() -> None:
    ice = new_lite()
    ice.handle(binding_request(), A, 1.0)
    ice.handle(binding_request(), B, 2.0)
    ice.discard(B)
    assert dict(ice.valid) == {A: 1.0} and ice.selected == A
    ice.discard(A)
    assert ice.selected is None and not ice.valid
    assert ice.expired(40.0)  # consent time survives: nothing answered since
    assert ice.handle(binding_request(), B, 41.0).selected == B
    ice.discard(("203.0.113.1", 1))  # unknown: nothing happens


# --- demultiplexing --------------------------------------------------------------------


def test_stun_local_ufrag() -> None:
    assert stun_local_ufrag(binding_request()) == LOCAL_UFRAG
    assert stun_local_ufrag(binding_request(pwd="whatever-password-x")) == LOCAL_UFRAG
    chrome_like = raw_request([(0xC057, b"\x00\x01\x00\x0a"), (0x0006, b"ufrag:peer")])
    assert stun_local_ufrag(chrome_like) == "ufrag"
    assert stun_local_ufrag(binding_request(username=None)) is None
    assert stun_local_ufrag(raw_request([(0x0006, b"nocolon")])) is None
    assert stun_local_ufrag(raw_request([(0x0006, b"\xff\xfe:x")])) is None
    indication = StunMessage(StunMethod.BINDING, StunClass.INDICATION)
    indication.attributes["USERNAME"] = "a:b"
    assert stun_local_ufrag(bytes(indication)) is None
    assert stun_local_ufrag(b"\x16\xfe\xfd" + bytes(40)) is None
    assert stun_local_ufrag(binding_request()[:-1]) is None


# --- a real full agent -----------------------------------------------------------------


class LiteEndpoint(asyncio.DatagramProtocol):
    """The SFU's UDP shell in miniature: STUN to IceLite, anything else recorded."""

    def __init__(self, ice: IceLite) -> None:
        self.ice = ice
        self.transport: asyncio.DatagramTransport | None = None
        self.media: asyncio.Queue[tuple[bytes, tuple[Any, ...]]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        if data and data[0] < 4:
            result = self.ice.handle(data, addr, asyncio.get_running_loop().time())
            if result.response is not None:
                self.transport.sendto(result.response, addr)
        else:
            self.media.put_nowait((data, addr))


async def test_aioice_controlling_agent_connects_to_us(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])
    loop = asyncio.get_running_loop()
    ufrag, pwd = new_credentials()
    agent = aioice.Connection(ice_controlling=True, components=1, use_ipv6=False)
    ice = IceLite(ufrag, pwd, remote_ufrag=agent.local_username)
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: LiteEndpoint(ice), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        agent.remote_is_lite = True
        agent.remote_username = ufrag
        agent.remote_password = pwd
        await agent.gather_candidates()
        [local] = agent.local_candidates
        await agent.add_remote_candidate(
            Candidate(
                foundation="1",
                component=1,
                transport="udp",
                priority=2130706431,
                host="127.0.0.1",
                port=port,
                type="host",
            )
        )
        await agent.add_remote_candidate(None)
        await asyncio.wait_for(agent.connect(), timeout=10)

        # aioice checked, then nominated with USE-CANDIDATE; both succeeded.
        assert ice.selected == ("127.0.0.1", local.port)
        assert ice.last_consent is not None and not ice.expired(loop.time())

        await agent.send(b"\x80media")  # and data now flows to our socket
        data, addr = await asyncio.wait_for(endpoint.media.get(), timeout=5)
        assert data == b"\x80media" and addr == ice.selected
    finally:
        await agent.close()
        transport.close()
