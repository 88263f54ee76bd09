"""Each class of bad input gets a 4xx with a JSON body naming the field, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Running

VALID = "[DEFAULT]\nnodes = n1\n\n[app#a]\nstart = true\n"


async def _call(
    ferryd: Running, method: str, path: str, *, data: bytes | None = None, json: Any = None
) -> tuple[int, dict[str, Any]]:
    async with (
        ferryd.session("root") as session,
        session.request(method, path, data=data, json=json) as resp,
    ):
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "data",
    [b"{", b"{'action': 'start'}", b"\xff\xfe", b"nul\x00", b'{"action": "start",}'],
)
async def test_malformed_json_is_400(ferryd: Running, data: bytes) -> None:
    status, body = await _call(ferryd, "POST", "/api/services/svc1/actions", data=data)
    assert (status, body["error"], body["field"]) == (400, "malformed JSON", "body")


async def test_empty_body_is_400(ferryd: Running) -> None:
    status, body = await _call(ferryd, "POST", "/api/services/svc1/actions", data=b"")
    assert (status, body["field"]) == (400, "body")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("start", "body"),
        ({}, "action"),
        ({"action": 3}, "action"),
        ({"action": "dance"}, "action"),
        ({"action": "stop", "force": "yes"}, "force"),
        ({"action": "start", "rids": "app#web"}, "rids"),
        ({"action": "start", "rids": ["app#web", 7]}, "rids.1"),
        ({"action": "start", "rids": ["../etc"]}, "rids.0"),
        ({"action": "start", "extra": 1}, "extra"),
        ({"action": "start", "to": "N 1"}, "to"),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    ferryd: Running, payload: Any, field: str
) -> None:
    status, body = await _call(ferryd, "POST", "/api/services/svc1/actions", json=payload)
    assert status == 422, body
    assert body["field"] == field, body
    assert body["problems"][0]["field"] == field


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"action": "start", "rids": ["app#nope"]}, "rids", "no resource app#nope"),
        ({"action": "start", "force": True}, "force", "force does not apply to start"),
        ({"action": "start", "to": "n2"}, "to", "to does not apply"),
        ({"action": "stop", "mode": "full"}, "mode", "mode does not apply"),
    ],
)
async def test_unknown_resource_or_misplaced_option_is_422(
    ferryd: Running, payload: Any, field: str, words: str
) -> None:
    status, body = await _call(ferryd, "POST", "/api/services/svc1/actions", json=payload)
    assert (status, body["field"]) == (422, field)
    assert words in body["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/services/nosuch"),
        ("GET", "/api/services/nosuch/config"),
        ("POST", "/api/services/nosuch/actions"),
    ],
)
async def test_unknown_service_is_404(ferryd: Running, method: str, path: str) -> None:
    payload = {"action": "start"} if method == "POST" else None
    status, body = await _call(ferryd, method, path, json=payload)
    assert (status, body["field"]) == (404, "svc")


@pytest.mark.parametrize(
    "path",
    [
        "/api/services/..%2F..%2Fetc%2Fpasswd",
        "/api/services/%2e%2e",
        "/api/services/.hidden",
        "/api/services/UPPER",
        "/api/services/a%20b",
        "/api/services/-dash",
        "/api/services/" + "%00",
        "/api/services/node",
    ],
)
async def test_path_tricks_are_refused(ferryd: Running, path: str) -> None:
    async with ferryd.session("root") as session:
        for method, suffix, payload in (
            ("GET", "", None),
            ("GET", "/config", None),
            ("PUT", "/config", {"text": VALID}),
            ("POST", "/actions", {"action": "start"}),
        ):
            async with session.request(method, path + suffix, json=payload) as resp:
                assert 400 <= resp.status < 500, (method, path, resp.status)
                body = await resp.json()
                if resp.status == 400:
                    assert body["field"] == "svc"
    # Nothing was written outside the config dir, nor over node.conf.
    assert not (ferryd.config_dir / "node.conf").exists()
    assert sorted(p.name for p in ferryd.config_dir.iterdir()) == ["slow.conf", "svc1.conf"]


async def test_dot_dot_segments_never_reach_another_route(ferryd: Running) -> None:
    async with ferryd.session("root") as session:
        async with session.get("/api/services/../../../etc/passwd") as resp:
            assert resp.status == 404
        async with session.get("/api/actions/..%2F..%2Fetc") as resp:
            assert resp.status == 400
            assert (await resp.json())["field"] == "action_id"


async def test_unknown_action_id_is_404(ferryd: Running) -> None:
    status, body = await _call(ferryd, "GET", "/api/actions/" + "a" * 32)
    assert (status, body["field"]) == (404, "action_id")


async def test_oversized_body_is_413(ferryd: Running) -> None:
    big = b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for path in ("/api/services/svc1/config/validate", "/api/services/svc1/actions"):
        status, body = await _call(ferryd, "POST", path, data=big)
        assert status == 413
        assert "larger than" in body["error"]


async def test_text_just_over_the_config_limit_is_422(ferryd: Running) -> None:
    text = "#" * (1024 * 1024 + 1)
    status, body = await _call(ferryd, "PUT", "/api/services/svc1/config", json={"text": text})
    assert (status, body["field"]) == (422, "text")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/services/svc1?refresh=maybe", "refresh"),
        ("/api/services/svc1?refresh=true&refresh=false", "refresh"),
        ("/api/services/svc1/config?node=N%201", "node"),
        ("/api/actions?limit=0", "limit"),
        ("/api/actions?limit=nan", "limit"),
        ("/api/actions?service=..", "service"),
        ("/api/actions/" + "a" * 32 + "?wait=-1", "wait"),
        ("/api/events?after=x", "after"),
    ],
)
async def test_bad_query_parameters_are_400(ferryd: Running, path: str, field: str) -> None:
    status, body = await _call(ferryd, "GET", path)
    assert (status, body["field"]) in ((400, field), (404, "action_id"))


async def test_unknown_route_and_method_are_json(ferryd: Running) -> None:
    status, body = await _call(ferryd, "GET", "/api/nothing")
    assert status == 404 and body["error"]
    status, body = await _call(ferryd, "DELETE", "/api/services/svc1")
    assert status == 405 and body["error"]


async def test_put_config_refuses_errors_and_writes_nothing(ferryd: Running) -> None:
    before = (ferryd.config_dir / "svc1.conf").read_text()
    bad = "[DEFAULT]\nnodes = n1\n\n[app#a]\nstart = true\nbogus = 1\n"
    status, body = await _call(ferryd, "PUT", "/api/services/svc1/config", json={"text": bad})
    assert status == 422 and body["field"] == "text"
    assert body["issues"][0]["line"] == 6 and body["issues"][0]["keyword"] == "bogus"
    assert (ferryd.config_dir / "svc1.conf").read_text() == before
    status, body = await _call(
        ferryd, "POST", "/api/services/svc1/config/validate", json={"text": bad}
    )
    assert status == 200 and body["valid"] is False
    status, body = await _call(ferryd, "PUT", "/api/services/svc1/config", json={"text": ""})
    # The document says a blank text is no configuration (minLength 1, pattern \S).
    assert status == 422 and body["field"] == "text"


async def test_config_view_and_install(ferryd: Running) -> None:
    status, body = await _call(ferryd, "PUT", "/api/services/svc1/config", json={"text": VALID})
    assert status == 200 and body["valid"] is True
    status, view = await _call(ferryd, "GET", "/api/services/svc1/config")
    assert status == 200
    assert view["text"] == VALID and view["valid"] is True
    assert view["evaluated"]["app#a"]["start"] == "true"
    assert view["evaluated"]["DEFAULT"]["nodes"] == ["n1"]


async def test_action_on_a_broken_service_is_409_with_issues(ferryd: Running) -> None:
    ferryd.write_service("broken", "[DEFAULT]\nnodes = n1\n[app#a]\nbogus = 1\n")
    status, body = await _call(
        ferryd, "POST", "/api/services/broken/actions", json={"action": "start"}
    )
    assert status == 409 and body["issues"][0]["keyword"] == "bogus"
    status, body = await _call(ferryd, "GET", "/api/services/broken")
    assert status == 409
    ferryd.write_service("elsewhere", "[DEFAULT]\nnodes = n7\n")
    status, body = await _call(
        ferryd, "POST", "/api/services/elsewhere/actions", json={"action": "start"}
    )
    assert status == 409 and "not in nodes or drpnodes" in body["error"]
    status, listing = await _call(ferryd, "GET", "/api/services")
    errors = {s["name"]: s["error"] for s in listing["services"]}
    assert "bogus" in errors["broken"] and "n7" in errors["elsewhere"]
