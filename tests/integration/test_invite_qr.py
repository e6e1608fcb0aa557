"""``GET /api/v1/invites/{token}/qr.svg``: the invite's join address as a QR code, for
signed-in people, and the address in it opens the chat when joined with."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import segno

from protocol.client import Client, http_request
from protocol.messages import InviteCreate, InviteInfo, InviteJoin
from tests.integration.conftest import RunningServer

SVG_NS = "{http://www.w3.org/2000/svg}"
_STEP = re.compile(r"([Mmh])([-\d.]+)(?: ([-\d.]+))?")


def dark_modules(svg: bytes) -> set[tuple[int, int]]:
    """The dark modules (row, column) the SVG draws: segno draws each row's runs as one
    path of absolute/relative moves and horizontal lines half a module below the row's top."""
    root = ET.fromstring(svg)
    [path] = [p for p in root.iter(SVG_NS + "path") if p.get("stroke")]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, first, second in _STEP.findall(path.get("d", "")):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            dark.update((int(y), int(x) + i) for i in range(int(float(first))))
            x += float(first)
    return dark


def expected_modules(text: str, border: int) -> set[tuple[int, int]]:
    code = segno.make(text, error="m", micro=False)
    return {
        (r + border, c + border)
        for r, row in enumerate(code.matrix)
        for c, value in enumerate(row)
        if value
    }


async def get(
    server: RunningServer, path: str, token: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http_request("GET", server.url + path, headers=headers)


async def test_the_qr_code_holds_the_join_address_and_it_joins(
    server: RunningServer, clients: list[Client]
) -> None:
    owner = await server.sign_in("Орлова", "Ольга")
    guest = await server.sign_in("Гусев", "Глеб")
    clients += [owner, guest]
    await owner.connect()
    chat = await owner.create_chat("Кружок робототехники")
    invite: InviteInfo = await owner.call(InviteCreate(chat_id=chat.id))
    assert invite.token is not None

    status, headers, svg = await get(server, f"/api/v1/invites/{invite.token}/qr.svg", guest.token)
    assert status == 200, svg
    assert headers["content-type"] == "image/svg+xml"
    assert headers["content-security-policy"] == "default-src 'none'"
    root = ET.fromstring(svg)
    # Only a view box: the page decides the size.
    assert root.get("width") is None and root.get("viewBox") is not None
    url = f"{server.url}/join/{invite.token}"
    assert dark_modules(svg) == expected_modules(url, border=4)

    # The address is the web client's join page; the token in it joins.
    status, _, page = await get(server, f"/join/{invite.token}", None)
    assert status == 200 and b'<div id="app">' in page
    await guest.connect()
    joined = await guest.call(InviteJoin(token=url.rsplit("/", 1)[1]))
    assert joined.chat.id == chat.id


async def test_only_signed_in_people_get_well_formed_tokens_drawn(
    server: RunningServer, clients: list[Client]
) -> None:
    person = await server.sign_in()
    clients.append(person)
    status, headers, body = await get(server, "/api/v1/invites/abc_DEF-123/qr.svg", None)
    assert (status, headers["content-type"]) == (401, "application/problem+json"), body
    status, _, body = await get(server, "/api/v1/invites/abc_DEF-123/qr.svg", person.token)
    assert status == 200, body
    for bad in ("a%20b", "%C2%B2", "x" * 101, "a.b", "abc%0A"):
        status, headers, body = await get(server, f"/api/v1/invites/{bad}/qr.svg", person.token)
        assert (status, headers["content-type"]) == (404, "application/problem+json"), bad
