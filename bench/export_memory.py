"""Peak resident memory of ``build_bundle`` for a causal-LM features detector, stage by stage.

    python bench/export_memory.py --layers 4            # SmolLM2-135M's shapes, 4 of its 30 layers, random weights
    python bench/export_memory.py --real --limit-gb 9   # the real SmolLM2-135M (cached weights)
    python bench/export_memory.py --real --lm-dir ~/.cache/aigc/qwen2.5-coder-1.5b --variants int8  # any cached LM
    python bench/export_memory.py --real --lm-dir ~/.cache/aigc/qwen2.5-coder-0.5b \
        --performer-dir ~/.cache/aigc/qwen2.5-coder-1.5b --detector binoculars      # the Qwen pair in one graph

Each stage's peak is the process's high-water mark (``VmHWM``) after resetting it (``/proc/self/clear_refs``)
at the stage's start, and beside it the stage's peak of anonymous memory (``RssAnon``, sampled every 20 ms):
``VmHWM`` also counts file-backed pages (weights that safetensors maps from disk, external data that ONNX
writes and maps back), which the kernel can drop under pressure, so for a large LM it overstates what the
export needs beside other jobs. A watchdog stops the run (exit 3, naming the stage) when the anonymous
memory passes ``--limit-gb``, so that a measurement never takes a shared machine down. The vocabulary (49,152) and the
windows are SmolLM2's whatever ``--layers``: the logits, not the layers, set the scoring memory.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = ("the model writes a long text about the history of science and people read it slowly while "
         "several researchers argue that careful measurement matters more than any single clever idea").split()


def _status(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` / ``RssAnon`` of this process in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pass


class Stages:
    """Per-stage peaks, and a watchdog that exits when RSS passes the limit."""

    def __init__(self, limit_gb: float) -> None:
        self.peaks: dict[str, float] = {}
        self.anon: dict[str, float] = {}
        self.stage = "start"
        self.limit = limit_gb
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            anon = _status("RssAnon")
            self.anon[self.stage] = round(max(self.anon.get(self.stage, 0.0), anon), 2)
            if anon > self.limit:
                print(json.dumps({"stopped": self.stage, "anon_gb": round(anon, 2), "limit_gb": self.limit,
                                  "peaks_gb": self.peaks, "anon_peaks_gb": self.anon}), flush=True)
                os._exit(3)
            time.sleep(0.02)

    def wrap(self, name: str, fn: Any) -> Any:
        def inner(*a: Any, **kw: Any) -> Any:
            prev, self.stage = self.stage, name
            _reset_peak()
            try:
                return fn(*a, **kw)
            finally:
                self.peaks[name] = round(max(self.peaks.get(name, 0.0), _status("VmHWM")), 2)
                self.stage = prev

        return inner


def _lm(args: argparse.Namespace, lm_dir: Path) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if args.real:
        lm = AutoModelForCausalLM.from_pretrained(lm_dir, torch_dtype=torch.float32, attn_implementation="eager")
    else:
        cfg = AutoConfig.from_pretrained(lm_dir)
        cfg.num_hidden_layers = args.layers
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        lm = AutoModelForCausalLM.from_config(cfg)
    return lm.eval()


def _model(args: argparse.Namespace, lm_dir: Path) -> Any:
    """``--detector features`` (seven statistics; with ``--performer-dir`` the pair terms too) or
    ``binoculars`` (needs ``--performer-dir``)."""
    from training.lmfeatures import LikelihoodFeatures
    from training.zeroshot import Binoculars

    performer = _lm(args, Path(args.performer_dir)) if args.performer_dir else None
    if args.detector == "binoculars":
        if performer is None:
            raise SystemExit("--detector binoculars needs --performer-dir")
        return Binoculars(_lm(args, lm_dir), performer).eval()
    model = LikelihoodFeatures(_lm(args, lm_dir), performer=performer).eval()
    model.fit_head(np.random.default_rng(0).normal(size=(40, len(model.feature_names))), np.arange(40) % 2)  # a fitted head to export
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lm-dir", default=str(Path.home() / ".cache" / "aigc" / "smollm2"),
                   help="SmolLM2 folder (config.json, tokenizer.json; model.safetensors for --real)")
    p.add_argument("--performer-dir", default="", help="a second LM folder of the same tokenizer (the pair)")
    p.add_argument("--detector", default="features", choices=["features", "binoculars"])
    p.add_argument("--real", action="store_true", help="load the real weights (else random, --layers layers)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--texts", type=int, default=48, help="calibration texts (half human, half ai labels)")
    p.add_argument("--words", type=int, default=400, help="words per text (~1.2 tokens a word)")
    p.add_argument("--variants", default="fp32")
    p.add_argument("--max-length", type=int, default=256, help="tokens a window")
    p.add_argument("--limit-gb", type=float, default=8.0, help="stop when anonymous memory passes this")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="keep the bundle here (for bench/score_memory.py)")
    args = p.parse_args(argv)

    from export import BuildOptions, build_bundle
    from export import bundle_build as bb
    from training.zeroshot import text_spec_for

    lm_dir = Path(args.lm_dir)
    st = Stages(args.limit_gb)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lm_dir)
    model = st.wrap("load model", _model)(args, lm_dir)
    spec = text_spec_for(tok, max_length=args.max_length, stride=args.max_length // 2)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, args.words)) for _ in range(args.texts)]
    labels = [i % 2 for i in range(args.texts)]
    for name in ("export_text_model", "make_variant", "check_fp32_parity", "check_parity", "score_calibration_split",
                 "_score_calibration_split", "scores_from_run", "_evaluate_variants"):
        if hasattr(bb, name):
            setattr(bb, name, st.wrap(name, getattr(bb, name)))
    with tempfile.TemporaryDirectory(prefix="aigc-mem-") as tmp:
        tok_file = Path(tmp) / "tokenizer.json"
        tok.backend_tokenizer.save(str(tok_file))
        run = SimpleNamespace(model=model, modality="text", preprocessing=spec.to_dict(), tokenizer_file=tok_file,
                              input_names=["input_ids", "attention_mask"], output_kind="score",
                              config={"name": "mem"}, provenance={})
        t0 = time.perf_counter()
        _reset_peak()
        build_bundle(run, Path(tmp) / "b", texts, labels, options=BuildOptions(
            targets=(0.1,), variants=[v for v in args.variants.split(",") if v], threads=args.threads, force=True))
        wall = time.perf_counter() - t0
        st.peaks["rest (since the last stage began)"] = round(_status("VmHWM"), 2)
        spec_out = json.loads((Path(tmp) / "b" / "bundle.json").read_text())
        sizes = {f.name: f.stat().st_size for f in (Path(tmp) / "b").iterdir()}
        if args.out:
            import shutil

            shutil.copytree(Path(tmp) / "b", args.out)
    n_params = sum(p.numel() for p in model.parameters())
    name = lm_dir.name + (f" + {Path(args.performer_dir).name}" if args.performer_dir else "")
    print(json.dumps({"lm": name if args.real else f"{name} shapes, {args.layers} layers, random",
                      "detector": args.detector, "parameters": n_params, "fp32_gb": round(n_params * 4 / 1e9, 3),
                      "texts": args.texts, "peaks_gb": st.peaks, "peak_gb": max(st.peaks.values()),
                      "anon_peaks_gb": st.anon, "anon_peak_gb": max(st.anon.values()), "wall_s": round(wall, 1),
                      "bundle_files": sizes, "variants_eval": spec_out.get("variants_eval")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
