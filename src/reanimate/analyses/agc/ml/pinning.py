"""Pinned models: load a model file only after its sha256 matches, and pin registry versions.

A pin is ``{"name", "version", "files": {"model_even": {"path", "sha256"}, "model_odd": ...}}``:
the registered model name and version in MLflow and the digest of each XGBoost JSON file. The
analysis loads models only through :func:`load_booster` with the pinned digest, so a tampered
or swapped file is refused (:class:`~reanimate.errors.DigestMismatch`).

Registry layout written by the ``train`` step (:mod:`reanimate.analyses.agc.ml.tracking`): one
registered model version per training run; its MLflow model is ``model_even`` (the ``xgboost``
flavour, ``model.json``) and carries ``model_odd.json`` under ``extra_files/``; the version's
tags hold the sha256 of both (:data:`SHA256_TAG`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from reanimate.atomic import atomic_path, write_text
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import sha256_file

ROLES = ("model_even", "model_odd")
SHA256_TAG = "reanimate.sha256.{role}"
FLAVOR_FILE = "model.json"
ODD_FILE = "extra_files/model_odd.json"


def verify_file(path: str | Path, expected_sha256: str) -> str:
    """Return ``path``'s sha256 if it equals ``expected_sha256``; raise DigestMismatch if not."""
    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"{path}: model file not found")
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise DigestMismatch(
            f"{path}: sha256 {actual} differs from the pinned {expected_sha256} "
            "(refusing to load a model that is not the pinned one)"
        )
    return actual


def load_booster(path: str | Path, expected_sha256: str, nthread: int = 1):
    """An ``xgboost.Booster`` from an XGBoost JSON file whose sha256 is ``expected_sha256``.

    The bytes are read once, verified, then parsed (no window between check and use).
    """
    import hashlib

    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"{path}: model file not found")
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha256.lower():
        raise DigestMismatch(
            f"{path}: sha256 {actual} differs from the pinned {expected_sha256} "
            "(refusing to load a model that is not the pinned one)"
        )
    return booster_from_bytes(raw, nthread)


def booster_from_bytes(raw: bytes, nthread: int = 1):
    import xgboost as xgb

    booster = xgb.Booster(params={"nthread": nthread})
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as exc:
        raise ReanimateError(f"not an XGBoost model: {str(exc).splitlines()[0]}") from None
    booster.set_param({"nthread": nthread})
    return booster


def pin_entry(path: str | Path) -> dict:
    return {"path": str(path), "sha256": sha256_file(path)}


def _mlflow_client(tracking_uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _latest_version(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        raise ReanimateError(f"registered model {name!r}: {exc.message}") from None
    if not versions:
        raise ReanimateError(f"registered model {name!r} has no versions (or does not exist)")
    return str(max(int(v.version) for v in versions))


def pin_from_registry(
    tracking_uri: str, name: str, version: str | int | None = None, out_dir: str | Path = "."
) -> dict:
    """Download registered model ``name`` (``version``, default the latest) into ``out_dir``.

    Writes ``out_dir/model_even.json`` and ``out_dir/model_odd.json``, checks them against the
    digests recorded at registration and returns the pin.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _mlflow_client(tracking_uri)
    version = str(version) if version is not None else _latest_version(client, name)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise ReanimateError(
            f"registered model {name!r} version {version}: {exc.message}"
        ) from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reanimate-pin-") as tmp:
        try:
            source = client.get_model_version_download_uri(name, version)
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source,
                    dst_path=tmp,
                    tracking_uri=tracking_uri,
                )
            )
        except (MlflowException, OSError) as exc:
            raise ReanimateError(
                f"cannot download {name!r} version {version} from {tracking_uri}: {exc}"
            ) from None
        sources = {"model_even": local / FLAVOR_FILE, "model_odd": local / ODD_FILE}
        files = {}
        for role, src in sources.items():
            if not src.is_file():
                raise ReanimateError(
                    f"{name!r} version {version}: artefact {src.name} missing "
                    f"(not registered by reanimate's train step?)"
                )
            expected = mv.tags.get(SHA256_TAG.format(role=role))
            dst = out_dir / f"{role}.json"
            if expected:
                verify_file(src, expected)
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
            files[role] = pin_entry(dst)
    return {"name": name, "version": str(version), "run_id": mv.run_id, "files": files}


def write_pin(pin: dict, path: str | Path) -> None:
    write_text(path, json.dumps(pin, indent=2, sort_keys=True) + "\n")


def read_pin(path: str | Path) -> dict:
    try:
        pin = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReanimateError(f"{path}: cannot read the model pin: {exc}") from None
    if not isinstance(pin, dict) or not all(r in pin.get("files", {}) for r in ROLES):
        raise ReanimateError(f"{path}: a pin needs files.model_even and files.model_odd")
    return pin
