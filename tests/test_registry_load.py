"""50 concurrent clients against a real registry server (SQLite) for ~10 s: publishing new
versions, re-publishing (200), conflicting (409), racing for shared versions, reading and
submitting campaigns. No 5xx, no connection error, every accepted write present afterwards with
its digest, no version with two digests. The driver is benchmarks/registry_load.py (which also
prints the rates and latencies: `python benchmarks/registry_load.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from registry_helpers import Server  # noqa: E402
from registry_load import check, report, run_load  # noqa: E402

CLIENTS, SECONDS = 50, 10.0


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry-load")
    server = Server(folder / "store").start()
    token = server.token("publish", "campaign", "read")
    try:
        load = run_load(server.url, token, seconds=SECONDS, clients=CLIENTS, folder=folder)
        yield server, token, load, check(server.url, token, load)
    finally:
        server.stop()


def test_no_server_error_and_no_connection_error(loaded):
    _, _, load, _ = loaded
    print(report(load))
    server_errors = {key: n for key, n in load.statuses.items()
                     if key[1] is None or key[1] >= 500}
    assert not server_errors, load.errors[:10]
    assert not load.errors, load.errors[:10]


def test_every_kind_of_request_ran(loaded):
    _, _, load, _ = loaded
    for kind, status in (("publish", 201), ("republish", 200), ("conflict", 409),
                         ("race", 201), ("race", 409), ("read", 200), ("campaign", 201)):
        assert load.statuses[(kind, status)] > 0, (kind, status, dict(load.statuses))
    assert sum(load.statuses.values()) > 10 * CLIENTS  # the clients were really concurrent


def test_every_accepted_write_is_there_with_one_digest(loaded):
    _, _, load, problems = loaded
    assert not problems, problems[:10]
    assert len(load.published) == load.statuses[("publish", 201)] + 1  # + the base version
    assert len(load.race_wins) <= 12
