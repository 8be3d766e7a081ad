"""The registry's JSON API against a real `reanimate registry serve` process on SQLite: publish
(201/200/409), read rules, auth (401/403), refusals that store nothing (413, 422), yank, ETags,
ranges, pagination, tokens, campaign submissions, and a server killed mid-upload."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.registry_helpers import Server, cli, minimal_bundle, sha256

API = "/api/v1"


class SmallServer(Server):
    """A server with a small upload limit (413 tests)."""

    def args(self) -> list[str]:
        return [*super().args(), "--max-upload", "3KB"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    srv = Server(root / "store").start()
    srv.tokens = {"admin": srv.token("admin", owner="root")}  # by the CLI, the others by the API
    srv.tokens.update(alice=new_token(srv, "alice", "publish", "campaign"),
                      bob=new_token(srv, "bob", "publish"), reader=new_token(srv, "carol", "read"))
    srv.bundles = root / "bundles"
    yield srv
    srv.stop()


def new_token(srv: Server, owner: str, *scopes: str) -> str:
    r = httpx.post(srv.url + API + "/tokens", json={"owner": owner, "scopes": list(scopes)},
                   headers={"Authorization": f"Bearer {srv.tokens['admin']}"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def client(srv: Server, who: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {srv.tokens[who]}"} if who else {}
    return httpx.Client(base_url=srv.url + API, headers=headers, timeout=60)


def put(srv: Server, path: str, data: bytes, who: str | None = "alice", **kwargs):
    with client(srv, who) as c:
        return c.put(path, content=data, headers={"Content-Type": "application/zip",
                                                  **kwargs.pop("headers", {})}, **kwargs)


def bundle(srv: Server, name="toy", version="1.0.0", payload=b'{"answer": 42}\n', **kw) -> bytes:
    path = srv.bundles / f"{name}-{version}-{hashlib.sha256(payload).hexdigest()[:8]}.zip"
    return minimal_bundle(path, name, version, payload, **kw).read_bytes()


def blob_files(srv: Server) -> list[Path]:
    return sorted(p for p in (srv.store / "blobs").rglob("*") if p.is_file())


def assert_nothing_stored(srv: Server, before: list[Path], name: str, version: str) -> None:
    assert blob_files(srv) == before
    assert list((srv.store / "tmp").iterdir()) == []
    with client(srv, "admin") as c:
        assert c.get(f"/analyses/{name}/versions/{version}").status_code == 404


def test_health(server):
    r = httpx.get(server.url + API + "/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "sqlite"
    assert r.json()["schema"] == "0001"


def test_publish_idempotent_and_immutable(server):
    data = bundle(server, "immut", "1.0.0")
    r = put(server, "/analyses/immut/versions/1.0.0", data,
            headers={"X-Bundle-SHA256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["bundle_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["bundle_size"] == len(data) and body["publisher"] == "alice"
    assert body["metadata"]["authors"] == ["Alice Physicist"]
    assert body["metadata"]["license"] == "Apache-2.0"
    assert [f["path"] for f in body["metadata"]["files"]] == [
        "outputs/result/answer.json", "ro-crate-metadata.json"]
    assert body["bundle_url"].startswith(server.url)
    again = put(server, "/analyses/immut/versions/1.0.0", data)
    assert again.status_code == 200 and again.json()["bundle_sha256"] == body["bundle_sha256"]
    before = blob_files(server)
    other = bundle(server, "immut", "1.0.0", payload=b"other\n")
    r = put(server, "/analyses/immut/versions/1.0.0", other)
    assert r.status_code == 409
    assert body["bundle_sha256"] in r.json()["error"]
    assert hashlib.sha256(other).hexdigest() in r.json()["error"]
    assert blob_files(server) == before
    assert list((server.store / "tmp").iterdir()) == []


def test_read_rules_and_auth(server):
    data = bundle(server, "secret", "0.1")
    assert put(server, "/analyses/secret/versions/0.1?private=true", data,
               who="bob").status_code == 201
    for who, code in ((None, 404), ("alice", 404), ("reader", 200), ("bob", 200),
                      ("admin", 200)):
        with client(server, who) as c:
            assert c.get("/analyses/secret").status_code == code, who
            assert c.get("/analyses/secret/versions/0.1/bundle").status_code == code, who
            names = [a["name"] for a in c.get("/analyses?per_page=100").json()["items"]]
            assert ("secret" in names) == (code == 200), who
    # writes: 401 without a token, 403 with the wrong scope or another owner's analysis
    assert put(server, "/analyses/newone/versions/1", b"x", who=None).status_code == 401
    r = put(server, "/analyses/newone/versions/1", b"x", who="reader")
    assert r.status_code == 403 and "publish" in r.json()["error"]
    r = put(server, "/analyses/secret/versions/0.2", bundle(server, "secret", "0.2"),
            who="alice")
    assert r.status_code == 403 and "bob" in r.json()["error"]
    with client(server) as c:
        assert c.post("/analyses/secret/versions/0.1/yank", json={}).status_code == 401
        assert c.post("/tokens", json={"owner": "x", "scopes": ["read"]}).status_code == 401
        assert c.get("/whoami").status_code == 401
    with client(server, "bob") as c:
        assert c.get("/whoami").json() == {"owner": "bob", "scopes": ["publish"]}
    with httpx.Client(base_url=server.url + API,
                      headers={"Authorization": "Bearer rnm_nope"}) as c:
        assert c.get("/analyses").status_code == 401


def test_unknown_is_404(server):
    with client(server, "admin") as c:
        for path in ("/analyses/nothing", "/analyses/nothing/versions/1",
                     "/analyses/immut/versions/9.9", "/analyses/immut/versions/9.9/bundle",
                     "/blobs/" + "0" * 64, "/campaigns/12345"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["status"] == 404, path


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return out.getvalue()


def _crate(name: str, version: str, files: dict[str, bytes], lie: bool = False) -> bytes:
    """A crate describing `files` (with a wrong digest for each if `lie`)."""
    graph = [{"@id": "ro-crate-metadata.json", "@type": "CreativeWork",
              "about": {"@id": "./"}},
             {"@id": "./", "@type": "Dataset", "name": name, "alternateName": name,
              "version": version, "hasPart": [{"@id": m} for m in files]}]
    for member, data in files.items():
        digest = hashlib.sha256(data + (b"!" if lie else b"")).hexdigest()
        graph.append({"@id": member, "@type": "File", "sha256": digest,
                      "contentSize": str(len(data))})
    metadata = json.dumps({"@context": "https://w3id.org/ro/crate/1.1/context",
                           "@graph": graph}).encode()
    return _zip([("ro-crate-metadata.json", metadata), *files.items()])


def _symlink() -> bytes:
    info = zipfile.ZipInfo("outputs/link")
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return _zip([("ro-crate-metadata.json", b"{}"), (info, b"/etc/passwd")])


@pytest.mark.parametrize("case", ["digest-header", "dotdot", "absolute", "symlink", "bomb",
                                  "member-digest", "name-mismatch", "version-mismatch",
                                  "not-a-zip"])
def test_bad_bundles_are_422_and_store_nothing(server, case):
    name, version = f"bad-{case}", "1.0"
    headers = {}
    if case == "digest-header":
        data = bundle(server, name, version)
        headers = {"X-Bundle-SHA256": "ab" * 32}
    elif case == "dotdot":
        data = _crate(name, version, {"outputs/../../evil.txt": b"x"})
    elif case == "absolute":
        data = _crate(name, version, {"/etc/evil.txt": b"x"})
    elif case == "symlink":
        data = _symlink()
    elif case == "bomb":
        data = _crate(name, version, {"outputs/zeros.bin": bytes(4 << 20)})
    elif case == "member-digest":
        data = _crate(name, version, {"outputs/a.txt": b"hello"}, lie=True)
    elif case == "name-mismatch":
        data = bundle(server, "someone-else", version)
    elif case == "version-mismatch":
        data = bundle(server, name, "2.0")
    else:
        data = os.urandom(2000)
    before = blob_files(server)
    r = put(server, f"/analyses/{name}/versions/{version}", data, headers=headers)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["status"] == 422 and "\n" not in body["error"]
    expect = {"digest-header": "X-Bundle-SHA256", "dotdot": "unsafe member",
              "absolute": "unsafe member", "symlink": "symbolic link", "bomb": "zip bomb",
              "member-digest": "differ", "name-mismatch": "not bad-name-mismatch",
              "version-mismatch": "not bad-version-mismatch@1.0", "not-a-zip": "not a readable"}
    assert expect[case] in body["error"], body
    assert str(server.store) not in body["error"]
    if case == "member-digest":
        assert "outputs/a.txt" in body["problems"][0]
    assert_nothing_stored(server, before, name, version)


def test_over_the_limit_is_413(tmp_path):
    small = SmallServer(tmp_path / "store").start()
    try:
        small.tokens = {"admin": small.token("admin", owner="root")}
        small.tokens["alice"] = new_token(small, "alice", "publish")
        small.bundles = tmp_path / "bundles"
        data = bundle(small, "big", "1", payload=os.urandom(5000))
        before = blob_files(small)
        r = put(small, "/analyses/big/versions/1", data)  # Content-Length: refused up front
        assert r.status_code == 413 and r.json()["status"] == 413
        assert_nothing_stored(small, before, "big", "1")

        def chunks():  # no Content-Length: refused while streaming
            for i in range(0, len(data), 1000):
                yield data[i:i + 1000]

        r = put(small, "/analyses/big/versions/1", chunks())
        assert r.status_code == 413, r.text
        assert_nothing_stored(small, before, "big", "1")
        fits = bundle(small, "big", "1")
        assert put(small, "/analyses/big/versions/1", fits).status_code == 201
        before = blob_files(small)
        with client(small, "admin") as c:  # a campaign submission over the limit
            r = c.post("/analyses/big/versions/1/campaigns",
                       files=[("campaign", ("c.yaml", CAMPAIGN.encode())),
                              ("files", ("signals/500.json", os.urandom(5000)))])
            assert r.status_code == 413, r.text
            assert c.get("/campaigns").json()["total"] == 0
        assert blob_files(small) == before and list((small.store / "tmp").iterdir()) == []
    finally:
        small.stop()
    assert "Finished server process" in small.log.read_text()  # SIGTERM: a graceful exit


def test_yank_hides_but_keeps(server):
    v1, v2 = bundle(server, "yankee", "1"), bundle(server, "yankee", "2", payload=b"two\n")
    assert put(server, "/analyses/yankee/versions/1", v1).status_code == 201
    assert put(server, "/analyses/yankee/versions/2", v2).status_code == 201
    with client(server, "bob") as c:
        assert c.post("/analyses/yankee/versions/2/yank", json={}).status_code == 403
    with client(server, "alice") as c:
        r = c.post("/analyses/yankee/versions/2/yank", json={"reason": "wrong lumi"})
        assert r.status_code == 200 and r.json()["yanked"] and r.json()["yank_reason"] == \
            "wrong lumi"
        again = c.post("/analyses/yankee/versions/2/yank", json={"reason": "other"})
        assert again.status_code == 200 and again.json()["yank_reason"] == "wrong lumi"
    with client(server) as c:
        listed = {a["name"]: a for a in c.get("/analyses?per_page=100").json()["items"]}
        assert listed["yankee"]["latest"] == "1" and listed["yankee"]["versions"] == 1
        assert [v["version"] for v in c.get("/analyses/yankee").json()["versions"]] == ["1"]
        everything = c.get("/analyses/yankee?include_yanked=true").json()["versions"]
        assert [(v["version"], v["yanked"]) for v in everything] == [("1", False), ("2", True)]
        assert c.get("/analyses/yankee/versions/2").json()["yanked"] is True
        assert c.get("/analyses/yankee/versions/2/bundle").content == v2
        assert c.get(f"/blobs/{hashlib.sha256(v2).hexdigest()}").content == v2


def test_etags_and_ranges(server):
    data = bundle(server, "ranged", "1", payload=os.urandom(3000))
    sha = hashlib.sha256(data).hexdigest()
    assert put(server, "/analyses/ranged/versions/1", data).status_code == 201
    with client(server) as c:
        r = c.get("/analyses/ranged/versions/1")
        etag = r.headers["etag"]
        assert c.get("/analyses/ranged/versions/1",
                     headers={"If-None-Match": etag}).status_code == 304
        r = c.get("/analyses/ranged/versions/1/bundle")
        assert r.content == data and r.headers["etag"] == f'"{sha}"'
        assert r.headers["x-bundle-sha256"] == sha
        assert r.headers["content-disposition"] == 'attachment; filename="ranged-1.crate.zip"'
        assert c.get("/analyses/ranged/versions/1/bundle",
                     headers={"If-None-Match": f'"{sha}"'}).status_code == 304
        part = c.get("/analyses/ranged/versions/1/bundle", headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == data[100:1100]
        tail = c.get(f"/blobs/{sha}", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == data[-50:]


def test_pagination(server):
    for i in range(3):
        assert put(server, f"/analyses/page{i}/versions/1",
                   bundle(server, f"page{i}", "1")).status_code == 201
    with client(server) as c:
        first = c.get("/analyses?per_page=2").json()
        total = first["total"]
        assert total >= 3 and len(first["items"]) == 2 and first["page"] == 1
        seen = [a["name"] for a in first["items"]]
        nxt = first["next"]
        while nxt:
            page = httpx.get(nxt).json()
            seen += [a["name"] for a in page["items"]]
            nxt = page["next"]
        assert len(seen) == total == len(set(seen)) and seen == sorted(seen)
        for bad in ("per_page=0", "per_page=101", "page=0", "page=x"):
            r = c.get(f"/analyses?{bad}")
            assert r.status_code == 422 and r.json()["problems"], bad


def test_tokens(server):
    with client(server, "admin") as c:
        r = c.post("/tokens", json={"owner": "dave", "scopes": ["read", "campaign"],
                                    "name": "ci"})
        assert r.status_code == 201 and r.json()["token"].startswith("rnm_")
        token = r.json()["token"]
        assert c.post("/tokens", json={"owner": "dave", "scopes": ["root"]}).status_code == 422
        assert c.get("/whoami").json()["scopes"] == ["read", "publish", "campaign", "admin"]
    who = httpx.get(server.url + API + "/whoami", headers={"Authorization": f"Bearer {token}"})
    assert who.json() == {"owner": "dave", "scopes": ["read", "campaign"]}
    with client(server, "alice") as c:
        assert c.post("/tokens", json={"owner": "x", "scopes": ["read"]}).status_code == 403
    done = cli("registry", "token", "create", "--owner", "eve", "--scope", "nope", "--store",
               server.store)
    assert done.returncode == 2 and "nope" in done.stderr and len(done.stderr.splitlines()) == 1
    done = cli("registry", "token", "create", "--owner", "eve", "--scope", "read",
               "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot open" in done.stderr

    # list shows no secret; revoke by prefix: refused from the next request on, idempotent
    listed = cli("registry", "token", "list", "--store", server.store)
    assert listed.returncode == 0 and token[:12] in listed.stdout and token not in listed.stdout
    done = cli("registry", "token", "revoke", token[:12], "--store", server.store)
    assert done.returncode == 0, done.stderr
    who = httpx.get(server.url + API + "/whoami", headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 401 and who.json()["error"] == "unknown or revoked token"
    again = cli("registry", "token", "revoke", token[:12], "--store", server.store)
    assert again.returncode == 0
    missing = cli("registry", "token", "revoke", "rnm_nothing", "--store", server.store)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


CAMPAIGN = """campaign_version: 1
name: scan
grid:
  axes: {mass: [500, 750]}
signal:
  histograms: "signals/{mass}.json"
plot: {x: mass}
"""


def test_campaign_submission(server):
    assert put(server, "/analyses/camp/versions/1", bundle(server, "camp", "1")).status_code \
        == 201
    url = "/analyses/camp/versions/1/campaigns"
    files = [("campaign", ("campaign.yaml", CAMPAIGN.encode())),
             ("files", ("signals/500.json", b"{}")), ("files", ("signals/750.json", b"[]"))]
    with client(server) as c:
        assert c.post(url, files=files).status_code == 401
    with client(server, "bob") as c:
        assert c.post(url, files=files).status_code == 403
    with client(server, "alice") as c:
        assert c.post("/analyses/camp/versions/9/campaigns", files=files).status_code == 404
        before = blob_files(server)
        for bad, what in (([files[0], ("files", ("../x.json", b"{}"))], "unsafe"),
                          ([("campaign", ("c.yaml", b"grid: [\n"))], ""),
                          ([("campaign", ("c.yaml", b"name: 3\nbogus: 1\n"))], ""),
                          (files[:2], "signals/750.json")):
            r = c.post(url, files=bad)
            assert r.status_code == 422, r.text
            assert what in r.json()["error"] + " ".join(r.json().get("problems", []))
            assert blob_files(server) == before
            assert list((server.store / "tmp").iterdir()) == []
        r = c.post(url, files=files)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["total"] == 2 and body["counts"]["queued"] == 2
        assert body["files"]["signals/500.json"] == hashlib.sha256(b"{}").hexdigest()
        points = c.get(body["points_url"]).json()
        assert [p["position"] for p in points["items"]] == [0, 1]
        assert c.get(f"/blobs/{body['files']['signals/750.json']}").content == b"[]"
        assert c.get("/campaigns?analysis=camp").json()["total"] == 1
        assert c.get(f"/campaigns/{body['id']}/plot.png").status_code == 404
        c.post("/analyses/camp/versions/1/yank", json={})
        assert c.post(url, files=files).status_code == 409


def test_server_killed_mid_upload(tmp_path):
    srv = Server(tmp_path / "store").start()
    try:
        srv.tokens = {"alice": srv.token("publish", owner="alice")}
        srv.bundles = tmp_path / "bundles"
        data = bundle(srv, "huge", "1", payload=os.urandom(30 * 1000**2))
        outcome = {}

        def slowly():
            for i in range(0, len(data), 1 << 18):
                yield data[i:i + (1 << 18)]
                time.sleep(0.02)

        def upload():
            try:
                outcome["status"] = put(srv, "/analyses/huge/versions/1", slowly()).status_code
            except httpx.HTTPError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=upload)
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                p.stat().st_size > 1000**2 for p in (srv.store / "tmp").iterdir()):
            time.sleep(0.05)
        srv.kill()
        thread.join(60)
        assert "error" in outcome, outcome
        partial = list((srv.store / "tmp").iterdir())
        stale = srv.store / "tmp" / "upload-stale.part"  # a killed server's, two hours ago
        stale.write_bytes(b"half")
        os.utime(stale, (time.time() - 7200, time.time() - 7200))
        srv.start()
        assert sorted((srv.store / "tmp").iterdir()) == partial  # the stale one removed
        for blob in blob_files(srv):
            assert sha256(blob) == blob.name
        assert httpx.get(srv.url + API + "/analyses/huge/versions/1").status_code == 404
        assert put(srv, "/analyses/huge/versions/1", data).status_code == 201
        got = httpx.get(srv.url + API + "/analyses/huge/versions/1/bundle", timeout=60)
        assert got.content == data
    finally:
        srv.stop()
