"""Small labelled data sets for the evaluation tests (made here, deterministic), and a fake detector."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aigc import Result

HUMAN_WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "in", "park"]
AI_WORDS = ["delve", "tapestry", "moreover", "furthermore", "the", "a", "in", "on"]


def write_text_data(path: Path, n: int = 120, seed: int = 0, extra_bad_rows: bool = True) -> Path:
    """JSONL with text/label/generator/domain/language/native fields; AI texts use the tiny model's AI words.
    With ``extra_bad_rows``: a bad JSON line, an unknown label and an empty text (fails in the runtime)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        y = i % 2
        length = int(rng.integers(4, 90))
        vocab = AI_WORDS if y else HUMAN_WORDS
        # mix in words of the other class so that the task is not trivial
        words = [str(rng.choice(vocab if rng.random() < 0.7 else (HUMAN_WORDS if y else AI_WORDS))) for _ in range(length)]
        row = {
            "text": " ".join(words),
            "label": y,
            "generator": "human" if y == 0 else ("gpt-a" if i % 4 == 1 else "gpt-b"),
            "domain": ["news", "essays", "poetry"][0 if i % 5 else (2 if i % 3 == 0 else 1)] if i % 7 else "essays",
            "language": "en" if i % 6 else "de",
            "pair_id": f"p{i}",
        }
        if y == 0:
            row["native"] = "yes" if i % 4 == 0 else "no"
        lines.append(json.dumps(row))
    if extra_bad_rows:
        lines.append("{not json")
        lines.append(json.dumps({"text": "the cat", "label": "maybe"}))
        lines.append(json.dumps({"text": "", "label": 1, "generator": "gpt-a", "domain": "news", "language": "en"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _img(rng: np.random.Generator, ai: bool, w: int, h: int) -> Image.Image:
    base = np.array([90, 160, 90] if ai else [160, 100, 90], dtype=float)
    arr = base + rng.normal(0, 40, size=(h, w, 3)) + rng.normal(0, 25, size=3)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def write_image_folder(root: Path, n_per_class: int = 16, seed: int = 0, corrupt: bool = True) -> Path:
    """real/ (indoor_*, outdoor_*) and ai/ (gan_*, diffusion1_*), PNG and JPEG of a few sizes; a corrupt file."""
    rng = np.random.default_rng(seed)
    (root / "real").mkdir(parents=True, exist_ok=True)
    (root / "ai").mkdir(parents=True, exist_ok=True)
    sizes = [(40, 36), (64, 48), (300, 260)]
    for i in range(n_per_class):
        for ai, folder, prefixes in ((False, "real", ["indoor", "outdoor"]), (True, "ai", ["gan", "diffusion1"])):
            w, h = sizes[i % len(sizes)]
            im = _img(rng, ai, w, h)
            ext = "png" if i % 3 == 0 else "jpg"
            name = f"{prefixes[i % 2]}_{i}.{ext}"
            if ext == "png":
                im.save(root / folder / name)
            else:
                im.save(root / folder / name, quality=90)
    if corrupt:
        (root / "ai" / "gan_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    return root


class FakeDetector:
    """Scores items (strings) by a lookup table; items missing from it fail. Enough of the Detector API for eval."""

    modality = "text"
    labels = ("human", "ai")
    tokenizer = None
    text_spec = None
    variant = "fp32"

    def __init__(self, table: dict[str, float], thresholds: dict[str, float] | None = None,
                 group_thresholds: dict[str, Any] | None = None, name: str = "fake") -> None:  # fmt: skip
        self.table = table
        ts = thresholds or {"fpr@1%": 0.9, "balanced": 0.5}
        self.spec: dict[str, Any] = {
            "name": name,
            "modality": "text",
            "thresholds": {k: {"value": v, "target_fpr": 0.01 if k == "fpr@1%" else None} for k, v in ts.items()},
            "calibration": {"method": "none"},
        }
        if group_thresholds:
            self.spec["group_thresholds"] = group_thresholds

    def resolve_threshold(self, name: str, group: str | None = None) -> tuple[str, float]:
        gt = self.spec.get("group_thresholds")
        if gt and group is not None and name in gt["groups"].get(group, {}):
            return name, float(gt["groups"][group][name]["value"])
        return name, float(self.spec["thresholds"][name]["value"])

    def score(self, items: list[Any], threshold: str = "fpr@1%", groups: Any = None, progress: Any = None) -> list[Result]:
        out = []
        for it in items:
            p = self.table.get(it)
            if p is None:
                out.append(Result(math.nan, None, threshold, 0.5, error="unknown item"))
            else:
                out.append(Result(p, "ai" if p >= 0.5 else "human", threshold, 0.5))
        if progress:
            progress(len(items))
        return out
