"""Fuzz the registry's API from its own OpenAPI schema (schemathesis) against a real server:
a bounded number of generated requests per operation, sent with an admin token (so they get past
authentication to the validation underneath) and without one; no response may be a 5xx.
Deterministic (hypothesis derandomised), about a minute for the whole API."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from registry_helpers import Server, minimal_bundle
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = 20  # per operation and mode (valid, invalid), each sent with and without the token


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry-fuzz")
    server = Server(folder / "store").start()
    try:
        token = server.token("admin")
        bundle = minimal_bundle(folder / "toy.zip", "toy", "1.0.0").read_bytes()
        response = httpx.put(f"{server.url}/api/v1/analyses/toy/versions/1.0.0", content=bundle,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/zip"}, timeout=60)
        assert response.status_code == 201, response.text
        yield server, token
    finally:
        server.stop()


def _fuzz(operation, mode, token: str, sent: Counter) -> None:
    """Hypothesis over one operation's generated requests; each sent as admin and anonymous."""

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        for headers in ({"Authorization": f"Bearer {token}"}, {}):
            response = case.call(headers=headers, timeout=30)
            sent[response.status_code // 100 * 100] += 1
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
            if response.status_code >= 400:  # the API's one error shape
                body = response.json()
                assert isinstance(body.get("error"), str) and body["error"], body
                assert body.get("status") == response.status_code, body

    run()


def test_no_server_error(fuzzed):
    """Every operation of the live server's /openapi.json, valid and invalid requests."""
    server, token = fuzzed
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # a bundle upload is raw bytes: generated binary strings, sent as they are
    schemathesis.serializer.alias("application/zip", "application/octet-stream")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [o.label for o in operations]
    failures, sent = [], Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, token, sent)
            except Unsatisfiable:  # nothing to make invalid (no parameter, no body)
                assert mode == GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # schemathesis's failure report, with a curl to replay it
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"{len(operations)} operations, responses by class: {dict(sorted(sent.items()))}")
    assert not failures, "\n\n".join(failures)
    assert sent[200] and sent[400], sent  # it reached the handlers and was refused too
