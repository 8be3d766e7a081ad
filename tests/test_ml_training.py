"""The train step: MLflow tracking (a real server and the embedded store), registry pin, quality.

One generated catalogue (20k ttbar events, by the datasets step) is shared; the MLflow server
starts at the first test and boots while the samples are generated and the embedded run trains.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from reanimate.analyses.agc.ml import pinning
from reanimate.analyses.agc.steps import train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SQLAlchemy 2.1 in mlflow

NAME = "bdt_test"
ARGS = [
    "--n_estimators_grid",
    "30",
    "--max_depth_grid",
    "3,4",
    "--seed",
    "7",
    "--mlflow_experiment",
    "ml_tests",
    "--mlflow_registered_model",
    NAME,
]
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class Server:
    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(
            QUIET,
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS="false",
        )
        mlflow_cli = Path(sys.executable).with_name("mlflow")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(mlflow_cli),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{directory / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(directory / "artifacts"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
                start_new_session=True,  # its own process group: teardown kills its workers too
            )
        self.ready = False

    def wait(self, timeout: float = 150.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited {self.proc.returncode}:\n" + self.log.read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    self.ready = r.status == 200
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        "mlflow server not healthy in time:\n" + self.log.read_text()[-3000:]
                    )
                time.sleep(0.25)
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("mlflow-server"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def samples(server, tmp_path_factory):  # requests the server first, so that it boots meanwhile
    """20k generated ttbar events (and the other samples), by the datasets step program."""
    out = tmp_path_factory.mktemp("samples20k")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reanimate.analyses.agc.steps.datasets",
            "--events",
            "20000",
            "--seed",
            "3",
            "--compression",
            "zlib",
            "--samples",
            str(out),
            "--signal_masses",
            "none",
        ],
        check=True,
        capture_output=True,
    )
    return out


def run_step(workdir: Path, samples: Path, monkeypatch, tracking_uri: str | None) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(workdir)
    for k, v in QUIET.items():
        monkeypatch.setenv(k, v)
    if tracking_uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REANIMATE_STEP_FACTS", str(workdir / "facts.json"))
    rc = train.main(
        [
            "--samples",
            str(samples),
            "--model_even",
            "model_even.json",
            "--model_odd",
            "model_odd.json",
            "--metrics",
            "metrics.json",
            *ARGS,
        ]
    )
    assert rc == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert "run_id" not in json.dumps(metrics)  # run identifiers are provenance, not output
    facts = json.loads((workdir / "facts.json").read_text())["mlflow"]
    assert len(facts["run_id"]) == 32
    return {**metrics, "run": facts}


@pytest.fixture(scope="module")
def embedded(samples, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("embedded")
    with pytest.MonkeyPatch.context() as mp:
        metrics = run_step(workdir, samples, mp, None)
    return workdir, metrics


def test_embedded_default_tracks_inside_the_working_directory(embedded):
    workdir, metrics = embedded
    assert (workdir / "mlruns.db").is_file() and (workdir / "mlartifacts").is_dir()
    assert metrics["mlflow"]["embedded"] is True
    assert metrics["mlflow"]["tracking_uri"] == "sqlite:///mlruns.db"
    pin = metrics["pin"]
    assert pin["name"] == NAME and metrics["run"]["version"] == "1"
    for role in ("model_even", "model_odd"):
        assert pin["files"][role]["sha256"] == pinning.pin_entry(workdir / f"{role}.json")["sha256"]
    assert {
        "accuracy",
        "roc_auc",
        "fraction_jets_correct",
        "fraction_events_correct",
        "random_fraction_events_correct",
        "random_fraction_jets_correct",
    } <= metrics.keys()
    assert len(metrics["grid"]) == 2 and metrics["hyperparameters"]["n_estimators"] == 30
    # the registry pin of the embedded store gives back the same files
    got = pinning.pin_from_registry(
        f"sqlite:///{workdir / 'mlruns.db'}", NAME, None, workdir / "pinned"
    )
    assert {r: f["sha256"] for r, f in got["files"].items()} == {
        r: f["sha256"] for r, f in pin["files"].items()
    }


def test_assignment_beats_random_choice_threefold(embedded):
    _, m = embedded
    print(
        f"\nevents fully correct: {m['fraction_events_correct']:.3f} "
        f"(random {m['random_fraction_events_correct']:.3f}); jets correct: "
        f"{m['fraction_jets_correct']:.3f} (random {m['random_fraction_jets_correct']:.3f}); "
        f"ROC AUC {m['roc_auc']:.3f}; {m['events']}"
    )
    assert m["events"]["events_matched"] > 300
    assert m["fraction_events_correct"] >= 3 * m["random_fraction_events_correct"]
    assert m["fraction_jets_correct"] > m["random_fraction_jets_correct"]


def test_held_out_metrics_agree_with_inference(embedded, samples):
    """Inference (best permutation, parity swap) on the matched events gives the metric."""
    from reanimate.analyses.agc.ml.inference import best_permutations
    from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES, TRAINING_BRANCHES
    from reanimate.analyses.agc.ml.training import matched_events
    from reanimate.analyses.agc.objects import BRANCHES
    from reanimate.datasets.reading import read_events

    workdir, m = embedded
    branches = list(dict.fromkeys(BRANCHES + INFERENCE_BRANCHES + TRAINING_BRANCHES))
    ev = matched_events(read_events(samples / "ttbar__nominal__000.root", branches))
    even, odd = (
        pinning.load_booster(workdir / f"{r}.json", m["pin"]["files"][r]["sha256"])
        for r in ("model_even", "model_odd")
    )
    best = best_permutations(ev.jets, ev.lepton, ev.event, even, odd, max_jets=4)
    assert float((best.index == ev.correct).mean()) == pytest.approx(m["fraction_events_correct"])


def test_training_does_not_depend_on_grid_order(samples):
    from reanimate.analyses.agc.ml import training
    from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES, TRAINING_BRANCHES
    from reanimate.analyses.agc.objects import BRANCHES
    from reanimate.datasets.reading import read_events

    branches = list(dict.fromkeys(BRANCHES + INFERENCE_BRANCHES + TRAINING_BRANCHES))
    data = training.training_set(
        read_events(samples / "ttbar__nominal__000.root", branches, 0, 8000)
    )
    runs = [
        training.train(data, training.grid([10], depths, 0.3), seed=1)
        for depths in ([2, 3], [3, 2])
    ]
    assert runs[0].chosen == runs[1].chosen
    for role in ("model_even", "model_odd"):
        assert getattr(runs[0], role).save_raw("json") == getattr(runs[1], role).save_raw("json")


def test_server_run_registers_a_version_that_scores_like_the_pinned_file(
    server, samples, embedded, tmp_path, monkeypatch
):
    import mlflow.xgboost

    url = server.wait()
    metrics = run_step(tmp_path / "work", samples, monkeypatch, url)
    assert os.environ["MLFLOW_TRACKING_URI"] == url  # restored after the step
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert metrics["mlflow"]["embedded"] is False and metrics["mlflow"]["tracking_uri"] == url
    assert not (tmp_path / "work" / "mlruns.db").exists()
    # deterministic: the same models as the embedded run, whatever the store
    assert metrics["pin"]["files"] == embedded[1]["pin"]["files"]
    version = metrics["run"]["version"]
    loaded = mlflow.xgboost.load_model(f"models:/{NAME}/{version}")
    pinned = pinning.load_booster(
        tmp_path / "work" / "model_even.json", metrics["pin"]["files"]["model_even"]["sha256"]
    )
    x = np.random.Generator(np.random.Philox(1)).normal(size=(240, 20)).astype(np.float32) * 60
    np.testing.assert_array_equal(loaded.inplace_predict(x), pinned.inplace_predict(x))
    # pin through the server: the registered files are the step's files, byte for byte
    from typer.testing import CliRunner

    from reanimate.cli.model import app

    result = CliRunner().invoke(
        app,
        [
            "fetch",
            "--tracking-uri",
            url,
            "--name",
            NAME,
            "--version",
            version,
            "--out",
            str(tmp_path / "pin"),
        ],
    )
    assert result.exit_code == 0, result.output
    pin = json.loads(result.output)
    assert pin["version"] == version
    for role in ("model_even", "model_odd"):
        assert pin["files"][role]["sha256"] == metrics["pin"]["files"][role]["sha256"]
        assert (tmp_path / "pin" / f"{role}.json").read_bytes() == (
            tmp_path / "work" / f"{role}.json"
        ).read_bytes()


def test_user_errors_are_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reanimate.analyses.agc.steps.train",
            "--samples",
            str(tmp_path / "none"),
            "--model_even",
            "e.json",
            "--model_odd",
            "o.json",
            "--metrics",
            "m.json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "catalogue not found" in proc.stderr
    assert (
        train.main(
            [
                "--samples",
                str(tmp_path),
                "--model_even",
                "e",
                "--model_odd",
                "o",
                "--metrics",
                "m",
                "--max_depth_grid",
                "3,x",
            ]
        )
        == 2
    )


PIN_SPEC = """
metadata: {name: pin-test, version: "1"}
steps:
  datasets:
    program: reanimate.analyses.agc.steps.datasets
    parameters: {events: 3000, seed: 3, signal_masses: none}
    outputs: {samples: samples/}
  train:
    program: reanimate.analyses.agc.steps.train
    inputs: {samples: steps.datasets.samples}
    parameters: {n_estimators_grid: "10", max_depth_grid: "2"}
    outputs: {model_even: m/model_even.json, model_odd: m/model_odd.json, metrics: m/metrics.json}
    mlflow: {experiment: pin-test, registered_model: pin-test-model}
  use:
    command: [python, -c, "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
              "{inputs.model}", "{outputs.copy}"]
    inputs: {model: steps.train.model_even}
    outputs: {copy: used_model.json}
"""


def test_model_pin_spec_replaces_training_and_refuses_tampering(server, tmp_path, monkeypatch):

    from reanimate.engines.local import run_spec
    from reanimate.errors import DigestMismatch
    from reanimate.spec import load_spec

    url = server.wait()
    spec = tmp_path / "spec.yaml"
    spec.write_text(PIN_SPEC)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    first = run_spec(load_spec(spec), tmp_path / "w1")
    assert first.executed == ["datasets", "train", "use"]
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "model", "pin", str(spec)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    pin = json.loads((tmp_path / "spec.lock.json").read_text())["models"]["train"]
    assert pin["name"] == "pin-test-model" and pin["version"] == "1"
    trained = tmp_path / "w1" / "results" / "train" / "m" / "model_even.json"
    pinned = tmp_path / pin["files"]["model_even"]["path"]
    assert pinned.read_bytes() == trained.read_bytes()
    # a later run needs no registry: the step is replaced by the pinned, checked files
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    second = run_spec(load_spec(spec), tmp_path / "w2")
    assert second.records["train"].status == "pinned"
    assert second.executed == ["datasets", "use"]
    used = tmp_path / "w2" / "results" / "use" / "used_model.json"
    assert used.read_bytes() == trained.read_bytes()
    pinned.write_text(pinned.read_text().replace("0", "1", 1))
    with pytest.raises(DigestMismatch) as info:
        run_spec(load_spec(spec), tmp_path / "w3")
    message = str(info.value)
    assert pin["files"]["model_even"]["sha256"] in message and "found" in message


def test_metrics_are_the_same_bytes_on_a_second_run(embedded, samples, monkeypatch):
    """A rerun registers version 2 under a new run id, and writes the same metrics bytes."""
    workdir, first = embedded
    before = (workdir / "metrics.json").read_bytes()
    second = run_step(workdir, samples, monkeypatch, None)
    assert second["run"]["version"] == "2" and second["run"]["run_id"] != first["run"]["run_id"]
    assert (workdir / "metrics.json").read_bytes() == before


def test_grid_points_with_fewer_trees_score_as_their_own_boosters():
    """The grid trains one booster per parity and depth, with the most trees; the points with
    fewer trees are scored with its first trees: the same metrics as boosters of their own."""
    from reanimate.analyses.agc.ml import training

    rng = np.random.default_rng(11)
    n = 600
    correct = rng.integers(0, training.N_PERMS, n)
    target = (np.arange(training.N_PERMS)[None, :] == correct[:, None]).ravel().astype(np.int8)
    features = rng.normal(size=(n * training.N_PERMS, 20)) + target[:, None] * 0.5
    data = training.TrainingSet(np.arange(n, dtype=np.uint64), np.zeros((n, 4), np.int64),
                                correct, features, target)
    hyper_grid = training.grid([20, 7], [2, 3], 0.3)
    shared = training.train(data, hyper_grid, seed=1)
    for entry, hp in zip(shared.grid, hyper_grid, strict=True):
        own = training.train(data, [hp], seed=1).grid[0]
        assert entry["validation"] == own["validation"], hp
    part = data.subset(data.event % 2 == 0)
    grown = training.fit(part, training.HyperParams(20, 3, 0.3), seed=1)
    alone = training.fit(part, training.HyperParams(7, 3, 0.3), seed=1)
    np.testing.assert_array_equal(training.predict(grown, part.features, trees=7),
                                  training.predict(alone, part.features))
