"""The Journal API and linking over real HTTP against a real server process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import orjson
import pytest

from protocol.client import http_request
from tests.domain.school import SCHOOL
from tests.integration.conftest import RunningServer, start_server, stop_server


@dataclass
class JournalServer:
    server: RunningServer
    journal_id: str
    token: str
    secret: str

    def assertion(self, sub: str, **claims: object) -> str:
        payload = {
            "iss": self.journal_id,
            "sub": sub,
            "aud": "parta",
            "exp": int(time.time()) + 300,
            "jti": f"{sub}-{time.monotonic_ns()}",
            "return_url": "https://journal.example/back?x=1",
        } | claims
        return jwt.encode(payload, self.secret, algorithm="HS256")

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        status, _, raw = await http_request(
            method,
            self.server.url + path,
            body=b"" if body is None else orjson.dumps(body),
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        return status, (orjson.loads(raw) if raw else None)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JournalServer]:
    data_dir = tmp_path_factory.mktemp("parta")
    made = subprocess.run(
        [sys.executable, "-m", "server", "journals", "add", "--data-dir", str(data_dir),
         "--region-code", "77", "--region-name", "Москва", "--name", "Дневник",
         "--link-url", "https://journal.example/link", "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    credentials = json.loads(made.stdout)
    server = start_server(data_dir)
    yield JournalServer(
        server, credentials["journal_id"], credentials["api_token"], credentials["signing_secret"]
    )
    log = stop_server(server)
    assert "Traceback" not in log, log


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
    status, headers, page = await http_request("GET", journal.server.url + page_path)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "Сидорова Аня" in page.decode()

    student = await journal.server.sign_in("Сидорова", "Анна")
    pending_id = page_path.rsplit("/", 1)[1]
    seen = await student.http_json("GET", f"/api/v1/links/pending/{pending_id}")
    assert seen["person"]["last_name"] == "Сидорова"
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
    assert status == 303
    pending_id = headers["location"].rsplit("/", 1)[1]
    await teacher.http_json("POST", f"/api/v1/links/pending/{pending_id}/confirm")
    await teacher.connect()
    assert "7Б класс" in {c.title for c in await teacher.list_chats()}
    await teacher.http_json("DELETE", f"/api/v1/links/{journal.journal_id}")
    assert await teacher.http_json("GET", "/api/v1/links") == {"links": []}
    await teacher.close()
