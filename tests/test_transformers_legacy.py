"""Directories written by fastinit.transformers load in transformers 4.57 too (its last release
before 5): no missing, unexpected or mismatched keys, nothing reported as newly initialized, the
loaded tensors equal to the files, finite outputs. transformers 4.57 runs in a venv of its own
(downloaded once: run with ``-m slow``)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import make_venv
from hf_models import AUTO, CONFIGS

pytest.importorskip("transformers")
import fastinit.transformers as fit

pytestmark = pytest.mark.slow
LEGACY = ["transformers==4.57.1", "torch==2.13.0", "safetensors>=0.4", "numpy"]

LOADER = r'''
import io, json, logging, os, sys
import torch, transformers
from safetensors.torch import load_file
sys.path.insert(0, sys.argv[2])
from hf_models import inputs, output

report = {}
for arch, auto, directory in json.loads(sys.argv[1]):
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    transformers.logging.set_verbosity_warning()
    logging.getLogger("transformers").addHandler(handler)
    model, info = getattr(transformers, auto).from_pretrained(directory, output_loading_info=True)
    logging.getLogger("transformers").removeHandler(handler)
    files = {}
    for name in os.listdir(directory):
        if name.endswith(".safetensors"):
            files.update(load_file(os.path.join(directory, name)))
    state = model.state_dict()
    model.eval()
    with torch.no_grad():
        finite = bool(torch.isfinite(output(model(**inputs(arch)))).all())
    report[arch] = {"version": transformers.__version__, "info": {k: sorted(map(str, v)) for k, v in info.items()},
                    "log": records.getvalue(), "finite": finite,
                    "unequal": [n for n, t in files.items() if n not in state or not torch.equal(state[n], t)]}
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def legacy_python(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("transformers-4.57"), LEGACY)


def test_transformers_4_57_loads_the_directories(legacy_python, tmp_path):
    cases = []
    for arch in CONFIGS:
        directory = tmp_path / arch
        fit.save_pretrained(CONFIGS[arch], directory, seed=3, max_shard_size="40KB")
        cases.append((arch, AUTO[arch], str(directory)))
    done = subprocess.run([legacy_python, "-c", LOADER, json.dumps(cases), os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1), file=sys.stderr)
    for arch, result in report.items():
        assert result["version"] == "4.57.1"
        assert not any(result["info"].values()), (arch, result["info"])
        assert "newly initialized" not in result["log"] and "not initialized" not in result["log"], result["log"]
        assert result["unequal"] == [], (arch, result["unequal"])
        assert result["finite"], arch
