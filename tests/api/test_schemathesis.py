"""Property-based: schemathesis generates requests (valid and invalid) from the OpenAPI
document against a real ferryd, as root and as operator; none may produce a 5xx, every
answer must match the document (all checks), and the daemon logs no error. Then direct
tests of the disagreements schemathesis once found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from daemon.api.auth import create_token
from daemon.api.schemas import SseEvent
from daemon.cli import client
from daemon.tls.authority import tls_files
from tests.api.conftest import APP_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd

MAX_EXAMPLES = 20
ROLES = ("root", "operator")
STREAMING = {"/api/events"}  # endless: its parameter is tested below, its events by test_actions
# The defaults of positive_data_acceptance, and 422: a schema-valid request this node still
# refuses (a configuration with errors, a node not of the cluster, an option that does not
# apply to the action). status_code_conformance checks the operation documents it.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
)
POINT = "2024-01-01T00:00:00Z"  # a restore point's name (svc1 has none)


@dataclass
class Live:
    proc: Ferryd
    tokens: dict[str, str]
    action_id: str
    doc: dict[str, Any]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.proc.port}"

    @property
    def ca(self) -> str:
        return str(tls_files(self.proc.var_dir).ca_cert)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens['root']}"}
        return requests.request(
            method, self.url + path, headers=headers, verify=self.ca, timeout=15, **kwargs
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = Path(tmp_path_factory.mktemp("st", numbered=True))
    config_dir, var_dir = write_dirs(base, {"svc1": APP_SERVICE})
    proc = Ferryd(config_dir, var_dir)
    try:
        proc.start()
        tokens = {role: create_token(var_dir, role, f"st-{role}") for role in ROLES}
        action_id = client.submit_action(proc.local, "svc1", "start", wait=True)["id"]
        doc = client.request(proc.local, "GET", "/api/openapi.json")
        yield Live(proc, tokens, action_id, doc)
    finally:
        proc.ensure_stopped()


def _operations(doc: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(doc, config=CONFIG)
    out = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # our document is valid: all Ok
        if operation.path not in STREAMING:
            out.append(operation)
    return out


def test_document_is_openapi_3_1_and_covers_the_routes(live: Live) -> None:
    doc = live.doc
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) >= {
        "/api/health",
        "/api/node",
        "/api/cluster",
        "/api/services",
        "/api/services/{svc}",
        "/api/services/{svc}/config",
        "/api/services/{svc}/config/validate",
        "/api/services/{svc}/actions",
        "/api/actions/{action_id}",
        "/api/actions/{action_id}/log",
        "/api/events",
        "/metrics",
    }
    action = doc["components"]["schemas"]["ActionRequest"]["properties"]["action"]
    assert "takeover" in action["enum"]
    assert len(_operations(doc)) == sum(len(ops) for ops in doc["paths"].values()) - 1


def _variants(operation: Any, action_id: str) -> list[dict[str, str]]:
    """Random path parameters, and also real ones so that requests reach the handlers."""
    variants: list[dict[str, str]] = [{}]
    if "{svc}" in operation.path:
        variants.append({"svc": "svc1"})
    if "{action_id}" in operation.path:
        variants.append({"action_id": action_id})
    return variants


def _exercise(strategy: Any, mode: GenerationMode, live: Live, token: str) -> set[int]:
    """Run one strategy for MAX_EXAMPLES cases, every check on each answer; the codes seen."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    transport = {"verify": live.ca, "timeout": 15}
    codes: set[int] = set()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=live.url, session=session, **transport)
        codes.add(response.status_code)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        case.validate_response(response, transport_kwargs=transport)

    try:
        run()
    except Unsatisfiable:
        # Nothing left to make invalid: the positive run covers the operation.
        assert mode is GenerationMode.NEGATIVE
    return codes


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_match_the_document(
    live: Live, mode: GenerationMode, role: str
) -> None:
    seen: dict[str, set[int]] = {}
    for operation in _operations(live.doc):
        for params in _variants(operation, live.action_id):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params or None)
            label = f"{operation.label} {params or ''}".strip()
            seen[label] = _exercise(strategy, mode, live, live.tokens[role])
    reached = {code for codes in seen.values() for code in codes}
    assert 200 in reached and all(code < 500 for code in reached)
    if role == "operator":  # the operator's limit is the root's routes: refused, not failed
        assert 403 in seen["PUT /api/services/{svc}/config {'svc': 'svc1'}"]
    assert live.proc.error_lines() == []


# ---------------------------------------------------------------------------- direct tests


def _error(response: requests.Response, status: int, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] and body["field"] == field


def _documented(live: Live, method: str, path: str, status: int) -> None:
    answer = live.doc["paths"][path][method.lower()]["responses"][str(status)]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


@pytest.mark.parametrize(
    "after", ["-1", "1.5", "1e3", "+1", " 1", "1_0", "\u0968", "", "9007199254740993"]
)
def test_events_after_is_a_non_negative_integer(live: Live, after: str) -> None:
    """Item 1: after is declared integer 0..2**53; anything else is a JSON 400."""
    schema = live.doc["paths"]["/api/events"]["get"]["parameters"][0]["schema"]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 0, 2**53)
    answer = live.request("GET", "/api/events", params={"after": after}, stream=True)
    _error(answer, 400, "after")
    _documented(live, "GET", "/api/events", 400)


def test_query_parameters_take_the_type_they_declare(live: Live) -> None:
    """Python's float() and a lenient boolean took more than the document says."""
    for word in ("1", "yes", "True"):
        _error(live.request("GET", "/api/services", params={"refresh": word}), 400, "refresh")
    assert live.request("GET", "/api/services", params={"refresh": "false"}).status_code == 200
    _error(live.request("GET", "/api/actions", params={"limit": "2.5"}), 400, "limit")
    _error(live.request("GET", "/api/actions", params={"limit": "\u0968"}), 400, "limit")
    assert live.request("GET", "/api/actions", params={"limit": "2"}).status_code == 200
    path = f"/api/actions/{live.action_id}"
    assert live.request("GET", path, params={"wait": "0.5"}).status_code == 200
    assert live.request("GET", path, params={"wait": "1e-3"}).status_code == 200
    _error(live.request("GET", path, params={"wait": "nan"}), 400, "wait")


def test_events_answer_frames_of_the_documented_event(live: Live) -> None:
    """Item 2: each event is an object of id, event and data; the stream is a text of them."""
    content = live.doc["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
    assert content["text/event-stream"]["schema"]["type"] == "string"
    assert content["text/event-stream"]["x-sse-event"] == {"$ref": "#/components/schemas/SseEvent"}
    event = live.doc["components"]["schemas"]["SseEvent"]
    assert event["type"] == "object" and set(event["required"]) == {"event", "data"}
    assert set(event["properties"]) == {"id", "event", "data"}
    data = live.doc["components"]["schemas"]["EventData"]
    assert set(data["required"]) == {"seq", "kind", "time", "data"}
    # The fixture's action published events: replay them from the start.
    frames: list[dict[str, Any]] = []
    with live.request("GET", "/api/events", params={"after": "0"}, stream=True) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        frame: dict[str, Any] = {}
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                continue  # the greeting, a keepalive
            if line:
                key, _, value = line.partition(": ")
                frame[key] = value
                continue
            if frame:  # a blank line after a comment dispatches nothing
                frames.append(frame)
            frame = {}
            if len(frames) == 3:
                break
    for raw in frames:
        parsed = SseEvent.model_validate(
            {"id": int(raw["id"]), "event": raw["event"], "data": json.loads(raw["data"])}
        )
        assert not isinstance(parsed.data, str)
        assert (parsed.data.seq, parsed.data.kind) == (parsed.id, parsed.event)


def _query_value(schema: dict[str, Any]) -> str:
    if schema["type"] == "boolean":
        return "true"
    if schema["type"] in ("integer", "number"):
        return str(schema.get("minimum", 0))
    return "n1" if "a-z0-9" in schema.get("pattern", "") else POINT


def test_a_repeated_query_parameter_is_a_documented_json_400(live: Live) -> None:
    """Item 3: every operation with query parameters, each parameter given twice."""
    real = {"{svc}": "svc1", "{action_id}": live.action_id, "{point}": POINT}
    tried = 0
    for path, ops in live.doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] != "query":
                    continue
                url = path
                for name, value in real.items():
                    url = url.replace(name, value)
                value = _query_value(param["schema"])
                answer = live.request(method, url, params=[(param["name"], value)] * 2)
                _error(answer, 400, param["name"])
                _documented(live, method, path, 400)
                assert "repeated query parameter" in op["responses"]["400"]["description"]
                tried += 1
    assert tried >= 10


@pytest.mark.parametrize(
    "path", ["/api/services/svc1/config", "/api/services/svc1/config/validate"]
)
@pytest.mark.parametrize("text", ["", " \n\t", "0", "[DEFAULT]\nnodes = n1\nbogus = 1\n"])
def test_a_config_text_answer_is_listed_for_its_operation(live: Live, path: str, text: str) -> None:
    """Item 4: an empty text is schema-invalid; a schema-valid text may still be a wrong
    configuration: 422 (PUT) or a report (validate), each listed by the document."""
    method = "PUT" if path.endswith("/config") else "POST"
    op = live.doc["paths"][path.replace("svc1", "{svc}")][method.lower()]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    field = live.doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]["text"]
    assert field["minLength"] == 1 and field["pattern"] == r"\S"
    answer = live.request(method, path, json={"text": text})
    assert str(answer.status_code) in op["responses"], answer.text
    assert "422" in op["responses"]
    if not text.strip() or method == "PUT":  # no configuration, or one refused
        _error(answer, 422, "text")
    else:  # validate reports a wrong configuration
        assert answer.status_code == 200 and answer.json()["valid"] is False
    peer = live.doc["components"]["schemas"]["PeerConfig"]["properties"]["text"]
    assert peer["minLength"] == 1


def test_peer_routes_take_a_node_certificate_only(live: Live) -> None:
    schemes = live.doc["components"]["securitySchemes"]
    assert schemes["nodeCert"]["type"] == "mutualTLS"
    peers = [
        (path, method)
        for path, ops in live.doc["paths"].items()
        for method, op in ops.items()
        if op.get("security") == [{"nodeCert": []}]
    ]
    assert ("/api/cluster/heartbeat", "post") in peers
    for path, method in peers:
        url = path.replace("{svc}", "svc1")
        _error(live.request(method, url, json={}), 403, None)
