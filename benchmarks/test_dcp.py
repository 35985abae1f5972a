"""A torchtitan Llama-3-8B seed checkpoint in torch.distributed.checkpoint format, from a spec file
that names the recipe, against ``dd bs=16M conv=fsync`` of the same size on the same disk:

    pytest benchmarks/test_dcp.py --benchmark-enable -s -m huge

Rounds alternate ``dd`` and ``fastinit generate --format dcp`` (a virtual disk's speed varies from
minute to minute: each ratio is of a pair run back to back); peak RSS is the generate process's.
"""

import json
import sys

import pytest
from conftest import rounds_against_dd, summary_against_dd

from fastinit.spec import load_spec

pytest.importorskip("torch")


def llama3_8b_spec() -> dict:
    """torchtitan's Llama 3 8B names and shapes (dim 4096, 32 layers, 8 KV heads, FFN 14336, vocab
    128256), bfloat16, every init from the torchtitan-llama3 recipe."""
    dim, hidden, kv, vocab = 4096, 14336, 1024, 128256
    shapes = {"tok_embeddings.weight": [vocab, dim]}
    for i in range(32):
        p = f"layers.{i}."
        shapes.update({p + "attention.wq.weight": [dim, dim], p + "attention.wk.weight": [kv, dim],
                       p + "attention.wv.weight": [kv, dim], p + "attention.wo.weight": [dim, dim],
                       p + "feed_forward.w1.weight": [hidden, dim], p + "feed_forward.w2.weight": [dim, hidden],
                       p + "feed_forward.w3.weight": [hidden, dim], p + "attention_norm.weight": [dim],
                       p + "ffn_norm.weight": [dim]})
    shapes.update({"norm.weight": [dim], "output.weight": [vocab, dim]})
    return {"recipe": {"name": "torchtitan-llama3"},
            "tensors": {name: {"shape": shape, "dtype": "bfloat16"} for name, shape in shapes.items()}}


@pytest.mark.huge
def test_dcp_seed_checkpoint_8b_against_dd(benchmark, tmp_path):
    spec = tmp_path / "llama3-8b.json"
    spec.write_text(json.dumps(llama3_8b_spec()))
    out = tmp_path / "seed"
    generate = [sys.executable, "-m", "fastinit", "generate", str(spec), "--out", str(out), "--format", "dcp",
                "--quiet"]
    rounds = rounds_against_dd(tmp_path, generate, out, load_spec(llama3_8b_spec()).nbytes)
    benchmark.group = "DCP seed checkpoint Llama-3-8B vs dd"
    benchmark.extra_info.update(rounds=rounds)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\nDCP {summary_against_dd(rounds)}")
