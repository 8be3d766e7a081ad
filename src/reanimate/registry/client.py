"""The registry's HTTP client, used by the CLI (`publish`, `registry list|show|download`,
`campaign submit|status|results --registry`, `verify NAME@VERSION --registry`).

Every answer that is not 2xx becomes a `RegistryError` naming the URL, the status and the
server's one-line error (and its located problems); a server that cannot be reached is one line
too. Bundles go up and come down streamed, never whole in memory; a download lands in a
temporary file beside its destination, is checked against the version's sha256 and renamed into
place (an interrupted download resumes with a Range request).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file

API = "/api/v1"
CHUNK = 1024 * 1024
UPLOAD_WAIT_S = 1800.0
METADATA = "ro-crate-metadata.json"


class RegistryError(ReanimateError):
    """An error answer of the registry (or no answer); `.status` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0, body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


def parse_ref(text: str, *, version: bool = True) -> tuple[str, str | None]:
    """NAME@VERSION -> (name, version); with `version=False` the @VERSION part is optional."""
    name, at, ver = str(text).partition("@")
    if not name or (at and not ver) or (version and not ver):
        want = "NAME@VERSION" if version else "NAME or NAME@VERSION"
        raise ReanimateError(f"{text!r}: expected {want} (e.g. agc-ttbar@2.0.0)")
    return name, ver or None


def bundle_identity(bundle: Path) -> tuple[str, str]:
    """(name, version) of a bundle, read from its crate metadata (alternateName, else name)."""
    try:
        with zipfile.ZipFile(bundle) as zf:
            doc = json.loads(zf.read(METADATA))
        root = next(e for e in doc["@graph"] if e.get("@id") == "./")
        name, version = root.get("alternateName") or root.get("name"), root.get("version")
    except (OSError, KeyError, StopIteration, ValueError, zipfile.BadZipFile) as exc:
        raise ReanimateError(f"{bundle}: not a reanimate bundle ({exc})") from None
    if not name or not version:
        raise ReanimateError(f"{bundle}: its crate metadata names no name and version")
    return str(name), str(version)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _q(text: str) -> str:
    return quote(str(text), safe="")


class RegistryClient:
    """A registry at `url` (its root, e.g. http://127.0.0.1:8000), with an optional token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        if not url:
            raise ReanimateError("no registry: give --registry URL or set $REANIMATE_REGISTRY")
        if not url.startswith(("http://", "https://")):
            raise ReanimateError(f"registry {url!r}: give its URL, http://HOST:PORT or https://…")
        url = url.rstrip("/")
        self.url = url[: -len(API)] if url.endswith(API) else url
        self.token = token or None
        self.timeout = timeout
        self._http = None

    # -- plumbing --------------------------------------------------------------------------
    @property
    def http(self):
        if self._http is None:
            import httpx

            headers = {"User-Agent": "reanimate-client"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._http = httpx.Client(headers=headers, timeout=self.timeout)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        if not path_or_url.startswith(API):
            path_or_url = API + path_or_url
        return self.url + path_or_url

    def page_url(self, path: str) -> str:
        """The web page of an API path (`/campaigns/3` -> URL/campaigns/3)."""
        return self.url + path

    def request(self, method: str, path: str, *, stream: bool = False, ok=(), **kwargs):
        """The response of METHOD path (an API path or a full URL); RegistryError unless 2xx
        (or a status in `ok`). With `stream`, the caller reads and closes the response.
        Uploads wait up to UPLOAD_WAIT_S for the answer: the server checks every member first."""
        import httpx

        url = self.absolute(path)
        if method in ("PUT", "POST"):
            kwargs.setdefault("timeout", httpx.Timeout(self.timeout,
                                                       read=max(self.timeout, UPLOAD_WAIT_S)))
        try:
            response = self.http.send(self.http.build_request(method, url, **kwargs),
                                      stream=stream)
        except httpx.ConnectError as exc:
            raise RegistryError(f"{url}: cannot reach the registry ({exc})") from None
        except httpx.TimeoutException:
            raise RegistryError(f"{url}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.is_success or response.status_code in ok:
            return response
        if stream:
            response.read()
            response.close()
        raise _error(url, response)

    def get_json(self, path: str, **kwargs) -> Any:
        return _json(self.request("GET", path, **kwargs))

    def pages(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a paginated list, following `next`."""
        items: list[dict] = []
        page = self.get_json(path, params={"per_page": 100, **(params or {})})
        while True:
            items += page.get("items", [])
            if not page.get("next"):
                return items
            page = self.get_json(page["next"])

    # -- analyses and versions ---------------------------------------------------------------
    def health(self) -> dict:
        return self.get_json("/health")

    def whoami(self) -> dict:
        return self.get_json("/whoami")

    def publish(self, bundle: Path, private: bool = False) -> tuple[int, dict]:
        """Upload a bundle as NAME@VERSION (from its metadata): (201 new | 200 the same bytes
        were already published, the version JSON). 409 (other bytes) is a RegistryError."""
        bundle = Path(bundle)
        name, version = bundle_identity(bundle)
        sha, size = sha256_file(bundle), bundle.stat().st_size
        response = self.request(
            "PUT", f"/analyses/{_q(name)}/versions/{_q(version)}", content=_chunks(bundle),
            params={"private": "true"} if private else None,
            headers={"Content-Type": "application/zip", "Content-Length": str(size),
                     "X-Bundle-SHA256": sha})
        return response.status_code, _json(response)

    def analyses(self) -> list[dict]:
        return self.pages("/analyses")

    def analysis(self, name: str, include_yanked: bool = False) -> dict:
        params = {"include_yanked": "true"} if include_yanked else None
        return self.get_json(f"/analyses/{_q(name)}", params=params)

    def version(self, name: str, version: str) -> dict:
        return self.get_json(f"/analyses/{_q(name)}/versions/{_q(version)}")

    def yank(self, name: str, version: str, reason: str = "") -> dict:
        return _json(self.request("POST", f"/analyses/{_q(name)}/versions/{_q(version)}/yank",
                                  json={"reason": reason}))

    def download(self, name: str, version: str, dest: Path) -> tuple[Path, str]:
        """The bundle of NAME@VERSION at `dest`, its sha256 checked: (dest, sha256)."""
        info = self.version(name, version)
        want = info["bundle_sha256"]
        url = info.get("bundle_url") or f"/analyses/{_q(name)}/versions/{_q(version)}/bundle"
        self.fetch(url, Path(dest), want)
        return Path(dest), want

    def fetch(self, url: str, dest: Path, sha256: str | None = None) -> Path:
        """GET url into dest through `.dest.part` (resumed with Range when it exists), the
        sha256 checked before the atomic rename. A dest that already has the digest is kept."""
        dest = Path(dest)
        if sha256 and dest.is_file() and sha256_file(dest) == sha256:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self.request("GET", url, stream=True, headers=headers, ok=(416,))
        try:
            if response.status_code == 416:  # a stale part: start again
                part.unlink()
                return self.fetch(url, dest, sha256)
            with open(part, "ab" if response.status_code == 206 and have else "wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            response.close()
        got = sha256_file(part)
        if sha256 and got != sha256 and have:  # a part left by something else: start again
            part.unlink()
            return self.fetch(url, dest, sha256)
        if sha256 and got != sha256:
            part.unlink()
            raise RegistryError(f"{self.absolute(url)}: the download has sha256 {got}, the "
                                f"registry names {sha256}; removed, try again")
        os.replace(part, dest)
        return dest

    # -- campaigns ---------------------------------------------------------------------------
    def submit_campaign(self, name: str, version: str, campaign_file: Path) -> dict:
        """Submit a campaign file against NAME@VERSION with the files it references (uploaded
        under their paths relative to the campaign file): the campaign JSON."""
        from contextlib import ExitStack

        campaign_file = Path(campaign_file)
        try:
            text = campaign_file.read_bytes()
        except OSError as exc:
            raise ReanimateError(f"{campaign_file}: {exc.strerror or exc}") from None
        files = referenced_files(campaign_file)
        with ExitStack() as stack:
            parts = [("campaign", (campaign_file.name, text, "application/yaml"))]
            for rel, path in files.items():
                handle = stack.enter_context(open(path, "rb"))
                parts.append(("files", (rel, handle, "application/octet-stream")))
            path = f"/analyses/{_q(name)}/versions/{_q(version)}/campaigns"
            return _json(self.request("POST", path, files=parts))

    def campaigns(self, analysis: str | None = None) -> list[dict]:
        return self.pages("/campaigns", {"analysis": analysis} if analysis else None)

    def campaign(self, campaign_id) -> dict:
        return self.get_json(f"/campaigns/{_q(campaign_id)}")

    def points(self, campaign_id) -> list[dict]:
        return self.pages(f"/campaigns/{_q(campaign_id)}/points")

    def results(self, campaign_id, fmt: str = "csv") -> str:
        response = self.request("GET", f"/campaigns/{_q(campaign_id)}/results",
                                params={"format": fmt})
        return response.content.decode("utf-8")

    def plot(self, campaign_id, dest: Path) -> Path:
        return self.fetch(f"/campaigns/{_q(campaign_id)}/plot.png", Path(dest))


def _json(response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RegistryError(f"{response.request.url}: {response.status_code}: the answer is not "
                            "JSON (is this a reanimate registry?)", response.status_code) from None


def _error(url: str, response) -> RegistryError:
    """The server's error body as one RegistryError: URL: STATUS: error: problem; problem."""
    body: dict = {}
    try:
        data = response.json()
        body = data if isinstance(data, dict) else {}
    except ValueError:
        pass
    message = body.get("error") or body.get("detail") or response.reason_phrase or "error"
    if not isinstance(message, str):
        message = json.dumps(message)
    problems = body.get("problems") or []
    text = f"{url}: {response.status_code}: {' '.join(message.split())}"
    if problems:
        text += ": " + "; ".join(str(p) for p in problems)
    return RegistryError(text, response.status_code, body)


# -- the files a campaign references --------------------------------------------------------


def referenced_files(campaign_file: Path) -> dict[str, Path]:
    """relative path (as the campaign file writes it, POSIX) -> local file, for every file
    its signal names: signal.files / signal.histograms expanded over the grid (a folder: every
    file below it; a catalogue: also the local files it lists), or signal.patchset. A recipe
    campaign references none."""
    from reanimate.reinterpret.campaign import load_campaign, signal_paths

    campaign, path = load_campaign(campaign_file)
    base = path.parent
    signal = campaign.signal
    grid = campaign.grid.labels() if campaign.grid is not None else [{}]
    names = [name for labels in grid for name in signal_paths(campaign, labels)]
    found: dict[str, Path] = {}
    for name in dict.fromkeys(names):
        rel = _relative(name, signal.route)
        local = base / rel
        if local.is_dir():
            for item in sorted(local.rglob("*")):
                if item.is_file():
                    found[(PurePosixPath(rel) / item.relative_to(local).as_posix()).as_posix()] \
                        = item
        elif local.is_file():
            found[rel] = local
            if signal.route == "files" and local.suffix == ".json":
                found.update(_catalogue_files(local, rel))
        else:
            raise ReanimateError(f"{campaign_file}: signal.{signal.route}: {name}: no such "
                                 f"file ({local})")
    return found


def _relative(name: str, route: str) -> str:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ReanimateError(f"signal.{route}: {name}: a registry campaign uploads the files "
                             "it names by their path relative to the campaign file, which "
                             "must lie beside or below it (no '..', not absolute)")
    return rel.as_posix()


def _catalogue_files(catalogue: Path, rel: str) -> dict[str, Path]:
    """The local files a sample catalogue lists (paths relative to it; URLs are not files)."""
    from reanimate.urls import is_remote

    try:
        doc = json.loads(catalogue.read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, Path] = {}
    folder = PurePosixPath(rel).parent
    variations = [v for p in doc.values() if isinstance(p, dict) for v in p.values()] \
        if isinstance(doc, dict) else []
    for variation in variations:
        for entry in (variation.get("files") or []) if isinstance(variation, dict) else []:
            path = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(path, str) and not is_remote(path):
                name = _relative((folder / path).as_posix(), "files")
                local = catalogue.parent / path
                if local.is_file():
                    out[name] = local
    return out
