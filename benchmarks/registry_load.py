"""The registry under load: N concurrent clients for a bounded time against a real server.

    python benchmarks/registry_load.py [--seconds 30] [--clients 50] [--database URL | --postgres]

Each client (a thread with its own httpx client and its own random generator) loops over a mix
of requests until the time is up:

* publish   — a new version (a minimal bundle with a payload of its own): 201;
* republish — one of its versions again, the same bytes: 200 and the same body;
* conflict  — one of its versions with other bytes: 409;
* race      — one of a few shared versions, with bytes of its own, that every client tries to
  claim: 201 for the first, 409 for the others (200 for the winner again);
* read      — the analyses list, an analysis, a version, a bundle (its sha256 checked), the
  campaigns list, the HTML pages;
* campaign  — a 2-point grid campaign against the base version: 201 (no worker runs it).

`run_load` returns a `Load` log, `check(url, load)` the problems found afterwards (every
accepted write present with its digest, no version with two digests, equal republish bodies);
tests/test_registry_load.py asserts that list is empty and no response was 5xx. Run as a
script it serves the registry itself (SQLite in a temporary store, or `--database URL`, or a
throw-away PostgreSQL cluster with `--postgres`) and prints request rates and p50/p99
latencies per kind and overall; figures only, nothing asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from registry_helpers import Postgres, Server, minimal_bundle  # noqa: E402

API = "/api/v1"
ANALYSES = tuple(f"load-{k}" for k in range(4))  # shared names: their first publish races too
BASE = ("load-base", "1.0.0")  # published before the clients start; campaigns go to it
RACE = "load-race"
RACE_VERSIONS = 12
WEIGHTS = {"publish": 3, "republish": 2, "conflict": 1, "race": 2, "read": 8, "campaign": 2}
EXPECTED = {"publish": {201}, "republish": {200}, "conflict": {409}, "race": {200, 201, 409},
            "read": {200}, "campaign": {201}}
CAMPAIGN = """campaign_version: 1
name: load-{n}
grid:
  axes: {{mass: [500, 750]}}
signal:
  recipe: "zprime:mass={{mass}},events=1000"
limits: {{cl: 0.95}}
"""


@dataclass
class Load:
    """What the clients saw; every method is called under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)  # (kind, status) -> n
    errors: list[str] = field(default_factory=list)  # connection errors, 5xx, wrong statuses
    published: dict = field(default_factory=dict)  # (name, version) -> 201 body
    republished: list = field(default_factory=list)  # ((name, version), 200 body)
    race_wins: dict = field(default_factory=dict)  # version -> (client, digest) from its 201
    digests: dict = field(default_factory=lambda: defaultdict(set))  # (name, version) -> seen
    campaigns: dict = field(default_factory=dict)  # id -> (name, version)
    seconds: float = 0.0

    def record(self, kind: str, status: int | None, elapsed: float, error: str = "") -> None:
        with self.lock:
            self.latency[kind].append(elapsed)
            self.statuses[(kind, status)] += 1
            if error:
                self.errors.append(error)

    def saw(self, body: dict) -> None:
        if isinstance(body, dict) and "bundle_sha256" in body:
            with self.lock:
                self.digests[(body["name"], body["version"])].add(body["bundle_sha256"])


def _bundle(folder: Path, name: str, version: str, payload: str) -> bytes:
    path = minimal_bundle(folder / f"{name}-{version}.zip", name, version, payload.encode())
    data = path.read_bytes()
    path.unlink()
    return data


class _Client:
    def __init__(self, index: int, url: str, token: str, load: Load, folder: Path) -> None:
        import httpx

        self.index, self.load, self.folder = index, load, folder
        self.rng = random.Random(index)
        self.http = httpx.Client(base_url=url, timeout=120.0,
                                 headers={"Authorization": f"Bearer {token}"})
        self.mine: list[tuple[str, str, bytes]] = []  # versions this client published
        self.count = 0

    def request(self, kind: str, method: str, path: str, **kwargs):
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except Exception as exc:  # connection refused/reset, timeouts: all are failures here
            self.load.record(kind, None, time.perf_counter() - started,
                             f"{kind} {method} {path}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        error = ""
        if response.status_code not in EXPECTED[kind]:
            error = f"{kind} {method} {path}: {response.status_code} {response.text[:300]}"
        self.load.record(kind, response.status_code, elapsed, error)
        return response

    def put(self, kind: str, name: str, version: str, data: bytes):
        return self.request(kind, "PUT", f"{API}/analyses/{name}/versions/{version}",
                            content=data, headers={"Content-Type": "application/zip"})

    def publish(self) -> None:
        self.count += 1
        name = self.rng.choice(ANALYSES)
        version = f"{self.index}.{self.count}.0"
        data = _bundle(self.folder, name, version, f"client {self.index} version {version}")
        response = self.put("publish", name, version, data)
        if response is not None and response.status_code == 201:
            body = response.json()
            self.load.saw(body)
            with self.load.lock:
                self.load.published[(name, version)] = body
            self.mine.append((name, version, data))

    def republish(self, conflict: bool) -> None:
        if not self.mine:
            return self.publish()
        name, version, data = self.rng.choice(self.mine)
        if conflict:
            data = _bundle(self.folder, name, version, f"other bytes {self.rng.random()}")
        response = self.put("conflict" if conflict else "republish", name, version, data)
        if response is not None and response.status_code == 200:
            body = response.json()
            self.load.saw(body)
            with self.load.lock:
                self.load.republished.append(((name, version), body))

    def race(self) -> None:
        version = f"0.{self.rng.randrange(RACE_VERSIONS)}.0"
        data = _bundle(self.folder, RACE, version, f"client {self.index} claims {version}")
        response = self.put("race", RACE, version, data)
        if response is not None and response.status_code in (200, 201):
            body = response.json()
            self.load.saw(body)
            if response.status_code == 201:
                with self.load.lock:
                    self.load.race_wins.setdefault(version, []).append(
                        (self.index, body["bundle_sha256"]))

    def read(self) -> None:
        with self.load.lock:
            known = list(self.load.published) or [BASE]
        name, version = self.rng.choice(known)
        choice = self.rng.randrange(7)
        if choice == 0:
            self.request("read", "GET", f"{API}/analyses",
                         params={"page": self.rng.randint(1, 3), "per_page": 10})
        elif choice == 1:
            self.request("read", "GET", f"{API}/analyses/{name}")
        elif choice == 2:
            response = self.request("read", "GET", f"{API}/analyses/{name}/versions/{version}")
            if response is not None and response.status_code == 200:
                self.load.saw(response.json())
        elif choice == 3:
            response = self.request("read", "GET",
                                    f"{API}/analyses/{name}/versions/{version}/bundle")
            if response is not None and response.status_code == 200:
                digest = hashlib.sha256(response.content).hexdigest()
                if digest != response.headers.get("X-Bundle-SHA256"):
                    self.load.record("read", 200, 0.0, f"bundle {name}@{version}: the bytes "
                                     f"hash to {digest}, the header says "
                                     f"{response.headers.get('X-Bundle-SHA256')}")
                self.load.saw({"name": name, "version": version, "bundle_sha256": digest})
        elif choice == 4:
            self.request("read", "GET", f"{API}/campaigns", params={"per_page": 20})
        elif choice == 5:
            self.request("read", "GET", "/")
        else:
            self.request("read", "GET", f"/analyses/{name}/{version}")

    def campaign(self) -> None:
        self.count += 1
        text = CAMPAIGN.format(n=f"{self.index}-{self.count}")
        response = self.request("campaign", "POST",
                                f"{API}/analyses/{BASE[0]}/versions/{BASE[1]}/campaigns",
                                files={"campaign": ("campaign.yaml", text.encode(),
                                                    "application/x-yaml")})
        if response is not None and response.status_code == 201:
            with self.load.lock:
                self.load.campaigns[response.json()["id"]] = BASE

    def run(self, deadline: float) -> None:
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        try:
            while time.monotonic() < deadline:
                kind = self.rng.choices(kinds, weights)[0]
                if kind in ("republish", "conflict"):
                    self.republish(conflict=kind == "conflict")
                else:
                    getattr(self, kind)()
        finally:
            self.http.close()


def run_load(url: str, token: str, *, seconds: float = 10.0, clients: int = 50,
             folder: Path | None = None) -> Load:
    """Publish the base version, then run `clients` threads for `seconds`; the log."""
    import httpx

    load = Load()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        base = _bundle(Path(tmp), *BASE, "the base version")
        response = httpx.put(f"{url}{API}/analyses/{BASE[0]}/versions/{BASE[1]}", content=base,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/zip"}, timeout=60)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"publishing the base version: {response.status_code} "
                               f"{response.text}")
        load.published[BASE] = response.json()
        workers = []
        for index in range(clients):
            folder_i = Path(tmp) / f"c{index}"
            folder_i.mkdir()
            workers.append(_Client(index, url, token, load, folder_i))
        started = time.monotonic()
        threads = [threading.Thread(target=w.run, args=(started + seconds,), daemon=True)
                   for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load.seconds = time.monotonic() - started
    return load


def check(url: str, token: str, load: Load) -> list[str]:
    """Problems found after the run: accepted writes missing or changed, a version with two
    digests, 200 bodies unequal to the version's, a race with two winners."""
    import httpx

    problems = []
    http = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"})
    final = {}
    for (name, version), body in sorted(load.published.items()):
        response = http.get(f"{API}/analyses/{name}/versions/{version}")
        if response.status_code != 200:
            problems.append(f"{name}@{version}: accepted (201) but {response.status_code} now")
            continue
        final[(name, version)] = now = response.json()
        if now["bundle_sha256"] != body["bundle_sha256"]:
            problems.append(f"{name}@{version}: published as {body['bundle_sha256']}, "
                            f"now {now['bundle_sha256']}")
        elif now != body:
            problems.append(f"{name}@{version}: its JSON changed since the 201")
    for key, body in load.republished:
        if key in final and body != final[key]:
            problems.append(f"{key[0]}@{key[1]}: a 200 re-publish body differs from the "
                            "version's JSON")
    for version, wins in sorted(load.race_wins.items()):
        if len(wins) > 1:
            problems.append(f"{RACE}@{version}: {len(wins)} publishes got 201: {wins}")
        response = http.get(f"{API}/analyses/{RACE}/versions/{version}")
        if response.status_code != 200 or response.json()["bundle_sha256"] != wins[0][1]:
            problems.append(f"{RACE}@{version}: the 201's digest {wins[0][1]} is not the "
                            f"version's ({response.status_code} {response.text[:200]})")
    for key, seen in sorted(load.digests.items()):
        if len(seen) > 1:
            problems.append(f"{key[0]}@{key[1]}: answered with {len(seen)} digests {seen}")
    for name in (*ANALYSES, RACE, BASE[0]):
        response = http.get(f"{API}/analyses/{name}", params={"include_yanked": "true"})
        if response.status_code == 404:
            continue
        listed = [v["version"] for v in response.json()["versions"]]
        if len(listed) != len(set(listed)):
            problems.append(f"{name}: a version listed twice: {sorted(listed)}")
        accepted = {v for (n, v) in load.published if n == name}
        if name == RACE:
            accepted = set(load.race_wins)
        if accepted - set(listed):
            problems.append(f"{name}: accepted versions not listed: "
                            f"{sorted(accepted - set(listed))}")
    for campaign_id, (name, version) in sorted(load.campaigns.items()):
        response = http.get(f"{API}/campaigns/{campaign_id}")
        body = response.json() if response.status_code == 200 else {}
        if (body.get("analysis"), body.get("version"), body.get("total")) != (name, version, 2):
            problems.append(f"campaign {campaign_id}: accepted (201) but now "
                            f"{response.status_code} {response.text[:200]}")
    http.close()
    return problems


def _percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(load: Load) -> str:
    lines = [f"{'kind':<10} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses"]
    everything = []
    for kind in WEIGHTS:
        values = load.latency.get(kind, [])
        everything += values
        if not values:
            continue
        statuses = ", ".join(f"{s}: {n}" for (k, s), n in sorted(
            load.statuses.items(), key=lambda item: str(item[0])) if k == kind)
        lines.append(f"{kind:<10} {len(values):>8} {len(values) / load.seconds:>8.1f} "
                     f"{1000 * _percentile(values, 50):>8.1f} "
                     f"{1000 * _percentile(values, 99):>8.1f}  {statuses}")
    if everything:
        lines.append(f"{'all':<10} {len(everything):>8} {len(everything) / load.seconds:>8.1f} "
                     f"{1000 * _percentile(everything, 50):>8.1f} "
                     f"{1000 * _percentile(everything, 99):>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--database", default="", help="a database URL (default: SQLite)")
    group.add_argument("--postgres", action="store_true",
                       help="a throw-away PostgreSQL cluster (Debian's postgresql)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="registry-load-") as tmp:
        postgres = Postgres(Path(tmp) / "pg").start() if args.postgres else None
        database = postgres.url if postgres else args.database
        server = Server(Path(tmp) / "store", database=database).start()
        try:
            token = server.token("publish", "campaign", "read")
            load = run_load(server.url, token, seconds=args.seconds, clients=args.clients,
                            folder=Path(tmp))
            problems = check(server.url, token, load)
        finally:
            server.stop()
            if postgres:
                postgres.stop()
    print(f"{args.clients} clients for {load.seconds:.1f} s on "
          f"{'PostgreSQL' if database.startswith('postgres') else 'SQLite'}")
    print(report(load))
    print(f"accepted: {len(load.published)} versions, {len(load.race_wins)} raced versions, "
          f"{len(load.campaigns)} campaigns; errors: {len(load.errors)}, problems after: "
          f"{len(problems)}")
    for line in (load.errors + problems)[:20]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
