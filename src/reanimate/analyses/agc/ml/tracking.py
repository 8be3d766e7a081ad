"""MLflow tracking of the training: params, metrics, the two models with a signature, registry.

Where: ``$MLFLOW_TRACKING_URI`` when set (a real server, e.g. ``http://host:5000``); otherwise
the embedded default, no server: a SQLite store ``mlruns.db`` and artefacts under
``mlartifacts/``, both in the working directory of the step.

What: a parent run with the grid, the chosen hyper-parameters, the event counts and the held-out
metrics; one nested run per grid point with its validation metrics; ``model_even`` and
``model_odd`` logged with ``mlflow.xgboost.log_model`` (JSON format, signature inferred from the
features) and ``model_even`` registered under the registered-model name with ``model_odd.json``
as an extra file and the sha256 of both as version tags (see
:mod:`reanimate.analyses.agc.ml.pinning`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from reanimate.analyses.agc.ml.pinning import SHA256_TAG
from reanimate.analyses.agc.ml.training import NTHREAD, TrainingResult
from reanimate.errors import ReanimateError

EMBEDDED_DB = "mlruns.db"
EMBEDDED_ARTIFACTS = "mlartifacts"
TRACKING_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri(workdir: str | Path = ".") -> tuple[str, bool]:
    """(URI, embedded?): $MLFLOW_TRACKING_URI, else a SQLite file in ``workdir``."""
    uri = os.environ.get(TRACKING_ENV)
    if uri:
        return uri, False
    return f"sqlite:///{Path(workdir).resolve() / EMBEDDED_DB}", True


def check_reachable(workdir: str | Path = ".", timeout: float = 10.0) -> str:
    """Fail fast (before training) when $MLFLOW_TRACKING_URI names a server that does not answer."""
    import urllib.error
    import urllib.request

    uri, embedded = tracking_uri(workdir)
    if embedded or not uri.startswith(("http://", "https://")):
        return uri
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass  # it answers (a proxy or an authenticating server may refuse /health itself)
    except (OSError, ValueError) as exc:
        raise ReanimateError(
            f"MLflow tracking server {uri} ({TRACKING_ENV}) does not answer: "
            f"{getattr(exc, 'reason', exc)}"
        ) from None
    return uri


@contextlib.contextmanager
def _using(uri: str):
    """Point MLflow's fluent API at ``uri``; restore its globals and environment after."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    env = {k: os.environ.get(k) for k in (TRACKING_ENV, "MLFLOW_REGISTRY_URI")}
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])  # set_tracking_uri also writes the environment
        registry_utils._registry_uri = saved[1]
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiment_id(client, name: str, embedded: bool, workdir: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (workdir / EMBEDDED_ARTIFACTS).resolve().as_uri() if embedded else None
    return client.create_experiment(name, artifact_location=location)


def _flat_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(_flat_metrics(v, f"{prefix}{k}."))
        elif isinstance(v, int | float) and not (isinstance(v, float) and np.isnan(v)):
            out[f"{prefix}{k}"] = float(v)
    return out


def log_training(
    result: TrainingResult,
    model_paths: dict[str, Path],
    sha256: dict[str, str],
    example: np.ndarray,
    params: dict,
    experiment: str,
    registered_model: str | None,
    workdir: str | Path = ".",
) -> dict:
    """Log the training to MLflow; returns the tracking/pin info for the metrics JSON."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    workdir = Path(workdir)
    uri, embedded = tracking_uri(workdir)
    x = np.ascontiguousarray(example, dtype=np.float32)
    requirements = [f"xgboost=={xgb.__version__}"]
    tags = {SHA256_TAG.format(role=r): d for r, d in sha256.items()}
    try:
        with _using(uri), tempfile.TemporaryDirectory(prefix="reanimate-mlflow-") as tmp:
            odd_copy = Path(tmp) / "model_odd.json"  # the registered extra file's fixed name
            shutil.copyfile(model_paths["model_odd"], odd_copy)
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            exp_id = _experiment_id(client, experiment, embedded, workdir)
            with mlflow.start_run(experiment_id=exp_id, run_name="train") as run:
                mlflow.log_params(
                    {
                        **params,
                        "nthread": NTHREAD,
                        "chosen_n_estimators": result.chosen.n_estimators,
                        "chosen_max_depth": result.chosen.max_depth,
                    }
                )
                mlflow.log_metrics(
                    _flat_metrics(
                        {**result.metrics, **{f"events_{k}": v for k, v in result.counts.items()}}
                    )
                )
                for entry in result.grid:
                    with mlflow.start_run(
                        experiment_id=exp_id, nested=True, run_name=f"grid-{entry['index']}"
                    ):
                        mlflow.log_params(
                            {k: entry[k] for k in ("n_estimators", "max_depth", "learning_rate")}
                        )
                        mlflow.log_metrics(_flat_metrics(entry["validation"], "validation."))
                info = {}
                for role in ("model_odd", "model_even"):
                    booster = getattr(result, role)
                    even = role == "model_even"
                    info[role] = mlflow.xgboost.log_model(
                        booster,
                        name=role,
                        model_format="json",
                        signature=infer_signature(x, booster.inplace_predict(x)),
                        pip_requirements=requirements,
                        tags=tags,
                        extra_files=[str(odd_copy)] if even else None,
                        registered_model_name=registered_model if even else None,
                    )
                run_id = run.info.run_id
            version = None
            if registered_model:
                version = str(info["model_even"].registered_model_version)
                for key, value in {**tags, "reanimate.run_id": run_id}.items():
                    client.set_model_version_tag(registered_model, version, key, value)
    except MlflowException as exc:
        raise ReanimateError(f"MLflow ({uri}): {exc.message}") from None
    return {
        "tracking_uri": f"sqlite:///{EMBEDDED_DB}" if embedded else uri,
        "embedded": embedded,
        "experiment": experiment,
        "run_id": run_id,
        "model_uris": {role: i.model_uri for role, i in info.items()},
        "registered_model": registered_model,
        "version": version,
    }
