"""Score more texts with a finished text run's torch model, as ``aigc train`` scored its dev and test splits.

A pipeline bench sometimes needs a run's raw scores on texts that were in none of its splits (glimpse's
non-English machine texts, after the run was started) without an ONNX export. This loads the run
(``training.run_folder.load_run``: its config, checkpoint and tokenizers), builds the loop's context as training
does, and scores DATA's rows through ``training.evaluate.score_rows``, the function that wrote the run's
``predictions/*.jsonl``. The output has the same rows (``index, label, score, generator, domain, source, group``),
so ``bench/newest_pipeline_data.py --score-run`` reads it beside them. Usage::

    .venv/bin/python bench/score_run_texts.py runs/newest-out runs/data/m4_machine.jsonl \\
        --out runs/newest-out/predictions/extra.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def score_file(run: Path, data: Path, text_field: str = "text") -> tuple[list[dict[str, Any]], np.ndarray]:
    """The rows of ``data`` (JSONL, each with ``text_field`` and ``label``) and the run's raw scores of them."""
    import yaml

    from training.config import config_from_dict
    from training.context import init_distributed
    from training.evaluate import score_rows
    from training.run import make_context
    from training.run_folder import load_run

    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(rows):
        if not isinstance(r.get(text_field), str) or r.get("label") not in (0, 1):
            raise SystemExit(f"{data}:{i + 1}: expected a string {text_field!r} and a label 0 or 1")
        r["item"] = r[text_field]
    loaded = load_run(run)
    if loaded.modality != "text":
        raise SystemExit(f"{run}: a {loaded.modality} run; this scores texts")
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")))
    model = loaded.model
    ctx, _ = make_context(run, cfg, model, "text", init_distributed("cpu"))
    return rows, score_rows(model, rows, ctx, f"scoring {data.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a finished aigc train run folder (text)")
    ap.add_argument("data", help="JSONL of texts with labels")
    ap.add_argument("--out", required=True, help="predictions JSONL to write (refused when it exists)")
    ap.add_argument("--text-field", default="text")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"{out} exists: give another --out", file=sys.stderr)
        return 2
    from training.run_folder import write_predictions

    rows, scores = score_file(Path(args.run), Path(args.data), args.text_field)
    write_predictions(out, rows, scores)
    print(f"{out}: {int(np.isfinite(scores).sum())} of {len(rows)} texts scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
