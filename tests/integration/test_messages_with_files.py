"""Files in messages, through a real server: upload, post, see it live, forward it."""

from __future__ import annotations

import io

from PIL import Image

from protocol.client import Client, ClientError, http_request
from protocol.messages import ForwardSpec
from tests.integration.conftest import RunningServer


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def test_a_photo_in_a_message_and_forwarded_to_another_chat(
    server: RunningServer, clients: list[Client]
) -> None:
    anna = await server.sign_in("Аннина", "Анна")
    boris = await server.sign_in("Борисов", "Борис")
    vera = await server.sign_in("Верина", "Вера")
    clients += [anna, boris, vera]
    for client in clients:
        await client.connect()
    assert boris.account_id and vera.account_id
    class_chat = await anna.create_chat("Класс", [boris.account_id])
    family = await boris.create_chat("Семья", [vera.account_id])
    await boris.next_event(5)  # the class chat's creation
    stored = await anna.upload(class_chat.id, photo(), kind="photo", name="доска.jpg")
    posted = await anna.post(class_chat.id, "Домашнее задание", attachments=[stored["id"]])
    event = await boris.next_event(5)
    while event.seq != posted.seq:
        event = await boris.next_event(5)
    [attachment] = event.attachments or []
    assert (attachment.kind, attachment.width, attachment.height) == ("photo", 640, 480)
    assert attachment.thumbnail and attachment.name == "доска.jpg"

    # Vera is not in the class chat: she can neither fetch the file nor post it elsewhere.
    status, _, _ = await http_request(
        "GET",
        f"{server.url}/api/v1/files/{attachment.id}",
        headers={"authorization": f"Bearer {vera.token}"},
    )
    assert status == 404
    try:
        await vera.post(family.id, "чужое", attachments=[attachment.id])
        raise AssertionError("a file of another chat was accepted")
    except ClientError as refused:
        assert refused.code == "not_found"

    # Boris forwards it to his family chat: Vera sees and downloads the copy.
    await boris.post(family.id, forward=ForwardSpec(chat_id=class_chat.id, seq=posted.seq))
    forwarded = await vera.next_event(5)
    while forwarded.kind != "message":
        forwarded = await vera.next_event(5)
    assert forwarded.forwarded is not None and forwarded.forwarded.actor_id == anna.account_id
    [copy] = forwarded.attachments or []
    assert copy.id != attachment.id and forwarded.text == "Домашнее задание"
    status, headers, body = await http_request(
        "GET",
        f"{server.url}/api/v1/files/{copy.id}",
        headers={"authorization": f"Bearer {vera.token}"},
    )
    assert status == 200 and body[:2] == b"\xff\xd8"  # the JPEG itself
    assert headers["content-type"] == "image/jpeg"
