"""Step program: train the AGC jet–parton assignment BDTs, tracked in MLflow.

    python -m reanimate.analyses.agc.steps.train --samples DIR --model_even model_even.json
        --model_odd model_odd.json --metrics metrics.json [--max_events N] [--seed S]
        [--n_estimators_grid 25,50] [--max_depth_grid 3] [--learning_rate 0.1]
        [--mlflow_experiment NAME] [--mlflow_registered_model NAME]

Reads the ttbar nominal files of DIR/catalogue.json (at most --max_events events), selects
4j2b events, matches the leading four jets to the generator partons, trains one XGBoost model on
even and one on odd event numbers (hyper-parameters from the grid) and writes both as XGBoost
JSON, plus a metrics JSON (held-out accuracy, ROC AUC, fractions of jets / events correctly
assigned and the random-choice fractions, the grid, the MLflow experiment and the model files'
digests). MLflow: $MLFLOW_TRACKING_URI, else an embedded SQLite store (mlruns.db, mlartifacts/)
in the working directory. Every output is deterministic: the identifiers of this MLflow run
(run id, registered version, model URIs) are not outputs; they go to the run's provenance (the
JSON file named by $REANIMATE_STEP_FACTS, which the local engine sets) and to stdout.
User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from reanimate.errors import ReanimateError
from reanimate.steps.interface import Flag, Interface, program_main

#: The flagship's names (specs/agc-ttbar.yaml, mlflow: block).
DEFAULT_EXPERIMENT = "agc-ttbar-jet-assignment"
DEFAULT_REGISTERED_MODEL = "agc-ttbar-jet-assignment"

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.train",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("samples", "directory", "input", help="catalogue directory (or catalogue JSON)"),
        Flag("max_events", "int", "parameter", default=None,
             help="ttbar events to read at most (default: all)"),
        Flag("seed", "int", "parameter", default=42, help="XGBoost seed"),
        Flag("n_estimators_grid", "str", "parameter", default="25,50",
             help="comma-separated grid of the number of trees"),
        Flag("max_depth_grid", "str", "parameter", default="3",
             help="comma-separated grid of the tree depth"),
        Flag("learning_rate", "float", "parameter", default=0.1, help="XGBoost eta"),
        Flag("model_even", "file", "output", help="model trained on even events (XGBoost JSON)"),
        Flag("model_odd", "file", "output", help="model trained on odd events (XGBoost JSON)"),
        Flag("metrics", "file", "output", help="metrics JSON (accuracy, grid, MLflow run, pin)"),
        Flag("mlflow_experiment", "str", "engine", default=DEFAULT_EXPERIMENT,
             help="MLflow experiment (mlflow: experiment)"),
        Flag("mlflow_registered_model", "str", "engine", default=DEFAULT_REGISTERED_MODEL,
             help="registered-model name, '' to skip registration (mlflow: registered_model)"),
    ),
)


def _int_list(flag: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ReanimateError(f"--{flag} {text!r}: expected comma-separated integers") from None
    if not values or any(v < 1 for v in values):
        raise ReanimateError(f"--{flag} {text!r}: expected positive integers")
    return list(dict.fromkeys(values))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_training_set(samples_dir: str, max_events: int | None):
    """Training examples from the ttbar nominal files of the catalogue (first files first)."""
    from reanimate.analyses.agc import objects, samples
    from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES, TRAINING_BRANCHES
    from reanimate.analyses.agc.ml.training import TrainingSet, training_set
    from reanimate.datasets.reading import read_events

    sample_list = [
        s for s in samples.load_samples(samples_dir, ["ttbar"]) if s.variation == "nominal"
    ]
    if not sample_list:
        raise ReanimateError(f"{samples_dir}: no ttbar nominal sample in the catalogue")
    branches = list(dict.fromkeys(objects.BRANCHES + INFERENCE_BRANCHES + TRAINING_BRANCHES))
    parts, remaining = [], max_events
    for f in sample_list[0].files:
        if remaining is not None and remaining <= 0:
            break
        events = read_events(f.path, branches, 0, remaining, sha256=f.sha256)
        if remaining is not None:
            remaining -= len(events)
        parts.append(training_set(events))
        _log(
            f"{f.path}: {parts[-1].counts['events_read']} events, "
            f"{parts[-1].counts['events_matched']} matched 4j2b events"
        )
    return TrainingSet.concatenate(parts)


def _finite(obj):
    """NaN (e.g. ROC AUC of a one-class sample) -> null, so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def train_models(args: argparse.Namespace) -> dict:
    """Train, write the models and the metrics; the metrics document with this run's ids."""
    from reanimate import atomic
    from reanimate.analyses.agc.ml import pinning, tracking, training

    if args.max_events is not None and args.max_events < 1:
        raise ReanimateError(f"--max_events must be positive, got {args.max_events}")
    if not 0 <= args.seed < 2**31:
        raise ReanimateError(f"--seed must be in [0, 2^31), got {args.seed}")
    if not 0 < args.learning_rate <= 1:
        raise ReanimateError(f"--learning_rate must be in (0, 1], got {args.learning_rate}")
    if not args.mlflow_experiment:
        raise ReanimateError("--mlflow_experiment must not be empty")
    hyper_grid = training.grid(
        _int_list("n_estimators_grid", args.n_estimators_grid),
        _int_list("max_depth_grid", args.max_depth_grid),
        args.learning_rate,
    )
    tracking.check_reachable()
    data = load_training_set(args.samples, args.max_events)
    _log(f"{len(data)} training events ({int((data.event % 2 == 0).sum())} even)")
    result = training.train(data, hyper_grid, args.seed, log=_log)

    paths = {"model_even": Path(args.model_even), "model_odd": Path(args.model_odd)}
    for role, path in paths.items():
        # save_raw("json") is byte for byte what save_model("x.json") writes, whatever the name
        atomic.write_bytes(path, bytes(getattr(result, role).save_raw(raw_format="json")))
    sha256 = {role: pinning.pin_entry(p)["sha256"] for role, p in paths.items()}
    params = {
        "seed": args.seed,
        "max_events": args.max_events,
        "n_estimators_grid": args.n_estimators_grid,
        "max_depth_grid": args.max_depth_grid,
        "learning_rate": args.learning_rate,
    }
    mlflow_info = tracking.log_training(
        result,
        paths,
        sha256,
        data.features[: training.N_PERMS * 10],
        params,
        args.mlflow_experiment,
        args.mlflow_registered_model or None,
    )
    doc = {
        **result.metrics,
        "hyperparameters": {
            "n_estimators": result.chosen.n_estimators,
            "max_depth": result.chosen.max_depth,
            "learning_rate": result.chosen.learning_rate,
            "seed": args.seed,
            "nthread": training.NTHREAD,
        },
        "grid": result.grid,
        "events": result.counts,
        "mlflow": {k: mlflow_info[k] for k in ("tracking_uri", "embedded", "experiment",
                                                "registered_model")},
        "pin": {
            "name": mlflow_info["registered_model"],
            "files": {role: {"path": p.name, "sha256": sha256[role]} for role, p in paths.items()},
        },
    }
    atomic.write_text(
        args.metrics, json.dumps(_finite(doc), indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
    run_facts = {"mlflow": {k: mlflow_info[k] for k in ("run_id", "version", "model_uris")}}
    _record_facts(run_facts)
    return {**doc, "run": run_facts["mlflow"]}


def _record_facts(facts: dict) -> None:
    """This run's identifiers: to the engine's facts file (provenance) and to stdout."""
    text = json.dumps(facts, sort_keys=True)
    print(text, flush=True)
    target = os.environ.get("REANIMATE_STEP_FACTS")
    if target:
        from reanimate import atomic

        atomic.write_text(target, text + "\n")


def run(args: argparse.Namespace) -> str:
    doc = train_models(args)
    return (
        f"events fully correct {doc['fraction_events_correct']:.3f} "
        f"(random {doc['random_fraction_events_correct']:.3f}), jets correct "
        f"{doc['fraction_jets_correct']:.3f}, ROC AUC {doc['roc_auc']:.3f}; "
        f"registered {doc['pin']['name']} version {doc['run']['version']}"
    )


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
