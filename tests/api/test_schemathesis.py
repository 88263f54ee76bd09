"""Property-based: schemathesis generates requests (valid and invalid) from the OpenAPI
document against a real ferryd; none may produce a 5xx, and every answer must match the
document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from daemon.api.auth import create_token
from daemon.api.tls import tls_files
from daemon.cli import client
from tests.api.conftest import APP_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd

MAX_EXAMPLES = 20
STREAMING = {"/api/events"}  # an endless stream: covered by test_actions instead


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ferryd, str]]:
    base = Path(tmp_path_factory.mktemp("st", numbered=True))
    config_dir, var_dir = write_dirs(base, {"svc1": APP_SERVICE})
    proc = Ferryd(config_dir, var_dir)
    try:
        proc.start()
        yield proc, create_token(var_dir, "root", "schemathesis")
    finally:
        proc.ensure_stopped()


def _operations(proc: Ferryd) -> list[Any]:
    doc = client.request(proc.local, "GET", "/api/openapi.json")
    schema = schemathesis.openapi.from_dict(doc)
    out = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # our document is valid: all Ok
        if operation.path not in STREAMING:
            out.append(operation)
    return out


def test_document_is_openapi_3_1_and_covers_the_routes(live: tuple[Ferryd, str]) -> None:
    proc, _ = live
    doc = client.request(proc.local, "GET", "/api/openapi.json")
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
    assert len(_operations(proc)) == sum(len(ops) for ops in doc["paths"].values()) - 1


def _variants(operation: Any, action_id: str) -> list[dict[str, str]]:
    """Random path parameters, and also real ones so that requests reach the handlers."""
    variants: list[dict[str, str]] = [{}]
    if "{svc}" in operation.path:
        variants.append({"svc": "svc1"})
    if "{action_id}" in operation.path:
        variants.append({"action_id": action_id})
    return variants


def _exercise(strategy: Any, mode: GenerationMode, base_url: str, token: str, ca: str) -> set[int]:
    """Run one strategy for MAX_EXAMPLES cases; the status codes seen."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
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
        response = case.call(base_url=base_url, session=session, timeout=15, verify=ca)
        codes.add(response.status_code)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if mode is GenerationMode.POSITIVE:
            case.validate_response(
                response,
                # A schema-valid config text may still be a wrong configuration (422).
                excluded_checks=[positive_data_acceptance],
                transport_kwargs={"verify": ca, "timeout": 15},
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing left to make invalid: the positive run covers the operation.
        assert mode is GenerationMode.NEGATIVE
    return codes


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_match_the_document(
    live: tuple[Ferryd, str], mode: GenerationMode
) -> None:
    proc, token = live
    base_url = f"https://127.0.0.1:{proc.port}"
    ca = str(tls_files(proc.var_dir).ca_cert)
    action_id = client.submit_action(proc.local, "svc1", "start")["action_id"]
    seen: dict[str, set[int]] = {}
    for operation in _operations(proc):
        for params in _variants(operation, action_id):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params or None)
            label = f"{operation.label} {params or ''}".strip()
            seen[label] = _exercise(strategy, mode, base_url, token, ca)
    reached = {code for codes in seen.values() for code in codes}
    assert 200 in reached and all(code < 500 for code in reached)
