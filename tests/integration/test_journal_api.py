"""The Journal API and linking over real HTTP against a real server process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from protocol.client import http_request
from tests.domain.school import SCHOOL
from tests.integration.conftest import stop_cleanly
from tests.integration.journal import JournalServer, start_journal_server


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JournalServer]:
    running = start_journal_server(tmp_path_factory.mktemp("parta"))
    yield running
    stop_cleanly(running.server)


async def test_regions_are_public_and_the_roster_needs_the_journal_token(
    journal: JournalServer,
) -> None:
    status, _, raw = await http_request("GET", journal.server.url + "/api/v1/regions")
    assert status == 200
    assert orjson.loads(raw)["regions"][0]["journals"][0]["name"] == "Дневник"
    status, _, raw = await http_request(
        "PUT", journal.server.url + "/api/v1/roster", body=orjson.dumps(SCHOOL)
    )
    assert status == 401 and orjson.loads(raw)["code"] == "unauthenticated"
    status, counts = await journal.call("PUT", "/api/v1/roster", SCHOOL)
    assert status == 200 and counts["created"]["users"] == 7  # type: ignore[index]
    status, problem = await journal.call("PUT", "/api/v1/roster", {"school": {"id": "x"}})
    assert status == 422 and problem["errors"][0]["field"] == "school.name"  # type: ignore[index]


async def test_linking_from_the_journal_end_to_end(journal: JournalServer) -> None:
    await journal.call("PUT", "/api/v1/roster", SCHOOL)
    url = journal.server.url + "/api/v1/link?assertion=" + journal.assertion("s2")
    status, headers, _ = await http_request("GET", url)
    assert status == 303
    page_path = headers["location"]
    assert page_path.startswith("/link/")
    # The web client's page, which reads the pending link before anyone signs in.
    status, headers, _ = await http_request("GET", journal.server.url + page_path)
    assert status == 200 and headers["content-type"].startswith("text/html")
    pending_id = page_path.rsplit("/", 1)[1]
    status, _, raw = await http_request(
        "GET", f"{journal.server.url}/api/v1/links/pending/{pending_id}"
    )
    seen = orjson.loads(raw)
    assert status == 200 and (seen["person"]["last_name"], seen["person"]["first_name"]) == (
        "Сидорова",
        "Аня",
    )
    assert seen["person"]["schools"][0]["role"] == "student"

    student = await journal.server.sign_in("Сидорова", "Анна")
    done = await student.http_json("POST", f"/api/v1/links/pending/{pending_id}/confirm")
    assert done["return_url"] == "https://journal.example/back?x=1"
    await student.connect()
    titles = {c.title for c in await student.list_chats()}
    assert titles == {"7А класс", "Математика 7А"}
    status, listed = await journal.call("GET", "/api/v1/users/s2/chats")
    assert status == 200 and {c["title"] for c in listed["chats"]} == titles  # type: ignore[index]
    links = await student.http_json("GET", "/api/v1/links")
    assert links["links"][0]["journal"]["name"] == "Дневник"
    await student.close()


async def test_refused_assertions_get_a_clear_page_and_change_nothing(
    journal: JournalServer,
) -> None:
    await journal.call("PUT", "/api/v1/roster", SCHOOL)
    for bad in (
        journal.assertion("t1", aud="other"),
        journal.assertion("t1", exp=int(time.time()) - 3600),
        "garbage",
    ):
        status, headers, page = await http_request(
            "GET", journal.server.url + "/api/v1/link?assertion=" + bad
        )
        assert status == 400 and headers["content-type"].startswith("text/html")
        assert "Ничего не изменилось" in page.decode()


async def test_linking_that_starts_in_parta(journal: JournalServer) -> None:
    await journal.call("PUT", "/api/v1/roster", SCHOOL)
    teacher = await journal.server.sign_in("Смирнов", "Олег")
    status, headers, raw = await http_request(
        "POST",
        journal.server.url + "/api/v1/links/start",
        body=orjson.dumps({"journal_id": journal.journal_id}),
        headers={"authorization": f"Bearer {teacher.token}", "content-type": "application/json"},
    )
    assert status == 200
    target = urlsplit(orjson.loads(raw)["url"])
    query = parse_qs(target.query)
    assert (target.netloc, target.path) == ("journal.example", "/link")
    assert query["return_url"] == [journal.server.url + "/api/v1/link"]
    state = query["state"][0]
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie == f"parta_link_state={state}"
    landing = f"{journal.server.url}/api/v1/link?state={state}&assertion={journal.assertion('t2')}"
    status, _, _ = await http_request("GET", landing)  # no cookie: another browser
    assert status == 400
    status, headers, _ = await http_request("GET", landing, headers={"cookie": cookie})
    # Started in Parta: the web client's page ends the flow in Parta, not at the journal.
    assert status == 303 and headers["location"].endswith("?from=parta")
    assert headers["set-cookie"].startswith("parta_link_state=;")
    pending_id = urlsplit(headers["location"]).path.rsplit("/", 1)[1]
    await teacher.http_json("POST", f"/api/v1/links/pending/{pending_id}/confirm")
    await teacher.connect()
    assert "7Б класс" in {c.title for c in await teacher.list_chats()}
    await teacher.http_json("DELETE", f"/api/v1/links/{journal.journal_id}")
    assert await teacher.http_json("GET", "/api/v1/links") == {"links": []}
    await teacher.close()
