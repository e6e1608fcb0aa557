"""Opening-handshake helpers of protocol.websocket (RFC 6455 section 4)."""

from __future__ import annotations

import base64
import copy
import pickle

import pytest
from websockets.client import ClientProtocol
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from protocol.websocket import (
    SUBPROTOCOL,
    HandshakeError,
    LocalProtocolError,
    accept_key,
    check_client_handshake,
    check_server_handshake_response,
    client_handshake_request,
    new_client_key,
    server_handshake_response,
)

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def parse_http(raw: bytes) -> tuple[str, dict[str, str]]:
    """Split an HTTP head into its start line and lower-cased headers."""
    assert raw.endswith(b"\r\n\r\n")
    start, *lines = raw[:-4].decode("ascii").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers
        headers[name.lower()] = value.strip()
    return start, headers


def client_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        "host": "school.example",
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": SAMPLE_KEY,
        "sec-websocket-version": "13",
        "sec-websocket-protocol": SUBPROTOCOL,
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return headers


def server_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": SAMPLE_ACCEPT,
        "sec-websocket-protocol": SUBPROTOCOL,
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return headers


def test_accept_key_rfc_sample() -> None:
    assert accept_key(SAMPLE_KEY) == SAMPLE_ACCEPT


def test_new_client_key() -> None:
    key = new_client_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert check_client_handshake("GET", client_headers(sec_websocket_key=key)) == key
    assert new_client_key() != key


class TestCheckClientHandshake:
    def test_valid(self) -> None:
        assert check_client_handshake("GET", client_headers()) == SAMPLE_KEY

    @pytest.mark.parametrize(
        "overrides",
        [
            {"upgrade": "WebSocket"},
            {"connection": "keep-alive, Upgrade"},
            {"connection": "upgrade,keep-alive"},
            {"sec_websocket_protocol": f"other.v2, {SUBPROTOCOL}"},
            {"sec_websocket_protocol": f"{SUBPROTOCOL},other"},
            {"sec_websocket_key": f" {SAMPLE_KEY} "},
            {"sec_websocket_extensions": "permessage-deflate"},  # ignored: not negotiated
        ],
    )
    def test_accepted_variants(self, overrides: dict[str, str]) -> None:
        assert check_client_handshake("GET", client_headers(**overrides)) == SAMPLE_KEY

    @pytest.mark.parametrize("method", ["POST", "HEAD", "get"])
    def test_method_must_be_get(self, method: str) -> None:
        with pytest.raises(HandshakeError) as info:
            check_client_handshake(method, client_headers())
        assert info.value.status == 405
        assert ("Allow", "GET") in info.value.headers

    @pytest.mark.parametrize(
        "overrides",
        [
            {"upgrade": None},
            {"upgrade": "h2c"},
            {"upgrade": "websockets"},
            {"connection": None},
            {"connection": "keep-alive"},
            {"connection": "upgraded"},
        ],
    )
    def test_upgrade_required(self, overrides: dict[str, str | None]) -> None:
        with pytest.raises(HandshakeError) as info:
            check_client_handshake("GET", client_headers(**overrides))
        assert info.value.status == 426
        assert ("Upgrade", "websocket") in info.value.headers

    @pytest.mark.parametrize("version", [None, "8", "12", "13, 8", ""])
    def test_version(self, version: str | None) -> None:
        with pytest.raises(HandshakeError) as info:
            check_client_handshake("GET", client_headers(sec_websocket_version=version))
        assert info.value.status == 426
        assert info.value.headers == (("Sec-WebSocket-Version", "13"),)

    @pytest.mark.parametrize(
        "key",
        [
            None,
            "",
            "not base64!",
            base64.b64encode(bytes(15)).decode(),
            base64.b64encode(bytes(17)).decode(),
            SAMPLE_KEY.rstrip("="),  # missing padding
            "dGhlIHNhbXBsZSBub25jZQ==é",
        ],
    )
    def test_invalid_key(self, key: str | None) -> None:
        with pytest.raises(HandshakeError) as info:
            check_client_handshake("GET", client_headers(sec_websocket_key=key))
        assert info.value.status == 400
        assert "Sec-WebSocket-Key" in info.value.reason

    @pytest.mark.parametrize("protocol", [None, "", "chat", "PARTA.V1", "parta.v2, parta"])
    def test_subprotocol_required(self, protocol: str | None) -> None:
        with pytest.raises(HandshakeError) as info:
            check_client_handshake("GET", client_headers(sec_websocket_protocol=protocol))
        assert info.value.status == 400
        assert SUBPROTOCOL in info.value.reason


class TestCheckServerResponse:
    def test_valid(self) -> None:
        check_server_handshake_response(101, server_headers(), SAMPLE_KEY)

    @pytest.mark.parametrize("status", [200, 400, 426, 503])
    def test_status_must_be_101(self, status: int) -> None:
        with pytest.raises(HandshakeError) as info:
            check_server_handshake_response(status, server_headers(), SAMPLE_KEY)
        assert info.value.status == status

    @pytest.mark.parametrize(
        "overrides",
        [
            {"upgrade": None},
            {"connection": "close"},
            {"sec_websocket_accept": None},
            {"sec_websocket_accept": accept_key(new_client_key())},
            {"sec_websocket_protocol": None},
            {"sec_websocket_protocol": "chat"},
            {"sec_websocket_extensions": "permessage-deflate"},
        ],
    )
    def test_rejected(self, overrides: dict[str, str | None]) -> None:
        with pytest.raises(HandshakeError):
            check_server_handshake_response(101, server_headers(**overrides), SAMPLE_KEY)


def test_round_trip() -> None:
    key = new_client_key()
    request = client_handshake_request(
        "school.example:8443", "/ws?journal=1", key, [("Origin", "https://school.example")]
    )
    start, headers = parse_http(request)
    assert start == "GET /ws?journal=1 HTTP/1.1"
    assert headers["host"] == "school.example:8443"
    assert headers["origin"] == "https://school.example"
    assert headers["sec-websocket-protocol"] == SUBPROTOCOL
    method = start.split(" ")[0]

    assert check_client_handshake(method, headers) == key

    response = server_handshake_response(key, [("Server", "parta")])
    start, headers = parse_http(response)
    assert start == "HTTP/1.1 101 Switching Protocols"
    assert headers["sec-websocket-accept"] == accept_key(key)
    assert headers["sec-websocket-protocol"] == SUBPROTOCOL
    assert headers["server"] == "parta"
    check_server_handshake_response(int(start.split(" ")[1]), headers, key)


def test_server_response_bytes() -> None:
    assert server_handshake_response(SAMPLE_KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: parta.v1\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    "header",
    [("X-Evil", "a\r\nSet-Cookie: x"), ("Bad Name", "x"), ("X-Latin", "café"), ("", "x")],
)
def test_header_injection_is_refused(header: tuple[str, str]) -> None:
    with pytest.raises(LocalProtocolError):
        server_handshake_response(SAMPLE_KEY, [header])
    with pytest.raises(LocalProtocolError):
        client_handshake_request("h", "/", SAMPLE_KEY, [header])


@pytest.mark.parametrize(("host", "path"), [("h", "ws"), ("h", "/a b"), ("h\r\n", "/"), ("", "/")])
def test_invalid_request_target(host: str, path: str) -> None:
    with pytest.raises(LocalProtocolError):
        client_handshake_request(host, path, SAMPLE_KEY)


def test_handshake_error_is_a_value() -> None:
    error = HandshakeError(426, "unsupported version", [("Sec-WebSocket-Version", "13")])
    assert str(error) == "426 unsupported version"
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert (clone.status, clone.reason, clone.headers) == (
            426,
            "unsupported version",
            (("Sec-WebSocket-Version", "13"),),
        )


# --- interoperability with the `websockets` library ---------------------------------------


def test_interop_library_client_with_our_server() -> None:
    client = ClientProtocol(parse_uri("ws://school.example/ws"), subprotocols=[SUBPROTOCOL])
    request = client.connect()
    client.send_request(request)
    start, headers = parse_http(b"".join(client.data_to_send()))
    assert start == "GET /ws HTTP/1.1"

    key = check_client_handshake("GET", headers)
    client.receive_data(server_handshake_response(key))

    [response] = client.events_received()
    assert response.status_code == 101
    assert client.handshake_exc is None
    assert client.state is WsState.OPEN
    assert client.subprotocol == SUBPROTOCOL


def test_interop_our_client_with_library_server() -> None:
    key = new_client_key()
    server = ServerProtocol(subprotocols=[SUBPROTOCOL])
    server.receive_data(client_handshake_request("school.example", "/ws", key))
    [request] = server.events_received()
    response = server.accept(request)
    server.send_response(response)
    assert server.handshake_exc is None

    start, headers = parse_http(b"".join(server.data_to_send()))
    assert start.startswith("HTTP/1.1 101 ")
    check_server_handshake_response(101, headers, key)
