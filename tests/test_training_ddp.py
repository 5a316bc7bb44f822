"""Two processes under torchrun (gloo on CPU): ranks agree, rank 0 writes the run, the checkpoint resumes in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

import _train_helpers  # noqa: F401  (puts this checkout's training package first)
import torch
from _train_helpers import REPO, make_text_jsonl, text_overrides, tiny_bert_dir

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_process_ddp_then_resume_in_one(tmp_path: Path) -> None:
    data = make_text_jsonl(tmp_path / "t.jsonl", n_pairs=30)
    bert = tiny_bert_dir(tmp_path / "bert")
    run = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: ddp\n")
    ov = text_overrides(data, f"hf:{bert}", ["train.max_steps=2", "train.eval_every=1", "train.device=cpu"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "training", str(cfg), "--out", str(run)]
    for o in ov:
        cmd += ["--set", o]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ddp = [x for x in lines if x["kind"] == "ddp"]
    assert len(ddp) == 1 and ddp[0]["world_size"] == 2 and ddp[0]["ranks_agree"], ddp
    assert len(ddp[0]["param_sums"]) == 2
    dev = [x for x in lines if x["kind"] == "dev"]
    assert [x["step"] for x in dev] == [1, 2]  # rank 0 alone writes; metrics gathered over both ranks' shards
    n_dev = len((run / "splits" / "dev.jsonl").read_text().splitlines())
    assert all(x["n"] == n_dev for x in dev)
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ck["step"] == 2 and ck["world_size"] == 2 and len(ck["rng"]) == 2

    # the two-process checkpoint resumes in one process
    from training import fit, load_config

    cfg1 = load_config(cfg, [o for o in ov if not o.startswith("train.max_steps")] + ["train.max_steps=4"])
    fit(cfg1, run, resume=True)
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ck["step"] == 4 and ck["world_size"] == 1

    # resuming under two processes with other data: every rank refuses with rank 0's reason (none is left
    # waiting for rank 0 at a collective, nor killed by the launcher with no reason of its own)
    make_text_jsonl(data, n_pairs=31)
    proc = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.count("the data differ from the interrupted run's") >= 2, proc.stderr[-3000:]
