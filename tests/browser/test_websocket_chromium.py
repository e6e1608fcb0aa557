"""Chromium's own ``WebSocket`` against the server: the subprotocol, binary msgpack frames
hand-encoded in the page, auth by message and by the session cookie of the server's origin.

The page encodes msgpack itself (a few lines below: fixarray, fixstr, str8, positive
fixint, fixmap), so nothing but the browser's WebSocket stands between the test and the
server; the reply bytes come back to Python as a list of numbers and are decoded there.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

from protocol.client import Client
from protocol.messages import AuthOk, ChatListResult, ErrorBody, decode_body, decode_envelope
from tests.integration.conftest import RunningServer

# Runs in the page: open a WebSocket to /ws offering parta.v1, send each message (a JS value
# encoded as msgpack here), collect binary replies until ``want`` arrived or the socket
# closed. Returns what happened, for Python to check.
EXCHANGE_JS = """
async ({messages, want, text}) => {
  const utf8 = new TextEncoder();
  function encode(value, out) {
    if (Array.isArray(value)) {
      if (value.length > 15) throw new Error("fixarray only");
      out.push(0x90 | value.length);
      for (const item of value) encode(item, out);
    } else if (typeof value === "number") {
      if (!Number.isInteger(value) || value < 0 || value > 127) throw new Error("fixint only");
      out.push(value);
    } else if (typeof value === "string") {
      const bytes = utf8.encode(value);
      if (bytes.length < 32) out.push(0xa0 | bytes.length);
      else if (bytes.length < 256) out.push(0xd9, bytes.length);
      else throw new Error("str8 at most");
      for (const b of bytes) out.push(b);
    } else if (typeof value === "object" && value !== null) {
      const keys = Object.keys(value);
      if (keys.length > 15) throw new Error("fixmap only");
      out.push(0x80 | keys.length);
      for (const key of keys) { encode(key, out); encode(value[key], out); }
    } else {
      throw new Error("cannot encode " + typeof value);
    }
    return out;
  }
  const ws = new WebSocket("ws://" + location.host + "/ws", "parta.v1");
  ws.binaryType = "arraybuffer";
  const result = {protocol: null, replies: [], nonBinary: 0, close: null};
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    const done = () => { clearTimeout(timer); resolve(); };
    ws.onopen = () => {
      result.protocol = ws.protocol;
      if (text !== null) ws.send(text);
      for (const message of messages) ws.send(new Uint8Array(encode(message, [])));
      if (want === 0 && text === null) done();
    };
    ws.onmessage = (event) => {
      if (!(event.data instanceof ArrayBuffer)) { result.nonBinary += 1; return; }
      result.replies.push(Array.from(new Uint8Array(event.data)));
      if (result.replies.length >= want) done();
    };
    ws.onclose = (event) => {
      result.close = {code: event.code, reason: event.reason, clean: event.wasClean};
      done();
    };
  });
  if (result.close === null) {
    await new Promise((resolve) => {
      ws.onclose = (event) => {
        result.close = {code: event.code, reason: event.reason, clean: event.wasClean};
        resolve();
      };
      ws.close(1000, "test done");
      setTimeout(resolve, 5000);
    });
  }
  return result;
}
"""


async def open_page(browser: Browser, server: RunningServer, token: str | None) -> Page:
    context: BrowserContext = await browser.new_context()
    if token is not None:
        await context.add_cookies([{"name": "parta_session", "value": token, "url": server.url}])
    page = await context.new_page()
    await page.goto(server.url + "/")
    return page


async def exchange(
    page: Page, messages: list[Any], want: int, text: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        EXCHANGE_JS, {"messages": messages, "want": want, "text": text}
    )
    assert result["protocol"] == "parta.v1", result
    assert result["nonBinary"] == 0, result
    return result


def replies(result: dict[str, Any]) -> list[Any]:
    return [decode_envelope(bytes(reply)) for reply in result["replies"]]


async def test_auth_message_from_chromium(server: RunningServer, browser: Browser) -> None:
    user: Client = await server.sign_in()
    assert user.token is not None
    page = await open_page(browser, server, None)
    result = await exchange(page, [[1, "auth", 1, {"token": user.token}]], want=1)
    [reply] = replies(result)
    assert (reply.type, reply.id) == ("ok", 1), result
    assert decode_body(reply.body, AuthOk) == AuthOk(account_id=user.account_id, has_profile=True)
    assert result["close"] == {"code": 1000, "reason": "", "clean": True}


async def cookie_chat_list(browser: Browser, server: RunningServer) -> dict[str, Any]:
    user = await server.sign_in()
    page = await open_page(browser, server, user.token)
    return await exchange(page, [[1, "chat.list", 2, {}]], want=1)


async def test_session_cookie_from_chromium(server: RunningServer, browser: Browser) -> None:
    result = await cookie_chat_list(browser, server)
    assert len(result["replies"]) == 1, result
    [reply] = replies(result)
    assert (reply.type, reply.id) == ("ok", 2)
    assert decode_body(reply.body, ChatListResult).chats == []
    assert result["close"]["code"] == 1000 and result["close"]["clean"], result


async def test_no_cookie_and_no_auth_is_closed_with_4401(
    server: RunningServer, browser: Browser
) -> None:
    page = await open_page(browser, server, None)
    result = await exchange(page, [[1, "chat.list", 2, {}]], want=1)
    assert result["replies"] == [], result
    assert result["close"]["code"] == 4401 and result["close"]["clean"], result


async def test_wrong_request_gets_an_error_reply_in_chromium(
    server: RunningServer, browser: Browser
) -> None:
    user = await server.sign_in()
    page = await open_page(browser, server, None)
    result = await exchange(
        page,
        [[1, "auth", 1, {"token": user.token}], [1, "chat.nope", 2, {}], [1, "chat.list", 3, {}]],
        want=3,
    )
    first, second, third = replies(result)
    assert (first.type, first.id) == ("ok", 1)
    assert (second.type, second.id) == ("error", 2)
    assert decode_body(second.body, ErrorBody).code == "unknown_type"
    assert (third.type, third.id) == ("ok", 3)


async def test_text_message_from_chromium_is_closed_with_1003(
    server: RunningServer, browser: Browser
) -> None:
    user = await server.sign_in()
    page = await open_page(browser, server, None)
    result = await exchange(page, [[1, "auth", 1, {"token": user.token}]], want=2, text="hi")
    assert result["close"] is not None, result
    assert result["close"]["code"] == 1003, result
    assert "binary" in result["close"]["reason"], result
    assert result["replies"] == [], result  # the auth after the text was never served
