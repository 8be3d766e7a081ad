"""A small spec with command steps, shared by the engine tests."""

from __future__ import annotations

COPY = "import sys; open(sys.argv[-1], 'w').write(open(sys.argv[1]).read() * int(sys.argv[2]))"
WRITE = "import sys; open(sys.argv[-1], 'w').write(sys.argv[1])"
JOIN = "import sys; open(sys.argv[-1], 'w').write(''.join(open(p).read() for p in sys.argv[1:-1]))"
SLEEP = "import sys, time; time.sleep(1.0); open(sys.argv[-1], 'w').write('slept')"
FAIL = "import sys; print('something broke here', file=sys.stderr); sys.exit(1)"

SPEC = f"""
metadata: {{name: engine-test, version: "1"}}
parameters:
  factor: 2
  tag: first
datasets:
  raw:
    files: [{{path: data.txt}}]
steps:
  scale:
    command: [python, -c, "{COPY}", "{{inputs.src}}", "{{parameters.factor}}", "{{outputs.out}}"]
    inputs: {{src: datasets.raw}}
    parameters: {{factor: "${{parameters.factor}}"}}
    outputs: {{out: scaled.txt}}
  label:
    command: [python, -c, "{WRITE}", "{{parameters.tag}}", "{{outputs.out}}"]
    parameters: {{tag: "${{parameters.tag}}"}}
    outputs: {{out: label.txt}}
  combine:
    command: [python, -c, "{JOIN}", "{{inputs.a}}", "{{inputs.b}}", "{{outputs.out}}"]
    inputs: {{a: steps.scale.out, b: steps.label.out}}
    outputs: {{out: combined.txt}}
  report:
    command: [python, -c, "{JOIN}", "{{inputs.c}}", "{{outputs.out}}"]
    inputs: {{c: steps.combine.out}}
    outputs: {{out: report/report.txt}}
"""


def small_flagship(events: int = 10000) -> dict:
    """The flagship spec as a dict, without training and plots, on `events` ttbar events, one
    Dask worker, no significance: the small AGC chain several test files run."""
    from pathlib import Path

    import yaml

    flagship = Path(__file__).resolve().parents[1] / "specs" / "agc-ttbar.yaml"
    doc = yaml.safe_load(flagship.read_text())
    doc["parameters"]["events"] = events
    doc["steps"]["datasets"]["parameters"]["signal_masses"] = "none"
    for step in ("train", "plots"):
        del doc["steps"][step]
    histograms = doc["steps"]["histograms"]
    for name in ("model_even", "model_odd"):
        del histograms["inputs"][name]
    del histograms["outputs"]["histograms_ml"]
    histograms["dask"]["workers"] = 1
    doc["steps"]["fit"]["parameters"]["significance"] = False
    return doc
