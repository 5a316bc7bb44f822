"""Demo data that builds offline, for the quickstart. It shows the mechanics; real numbers come from real data.

Text: human passages are prose paragraphs of the Python documentation that ships with every Python
(``pydoc_data.topics``, PSF licence); machine texts are continuations of their first words generated
here by SmolLM2-135M (the recipe behind the Fast-DetectGPT data). Each pair shares ``pair_id``.

Images: real photos shipped by scikit-image and scikit-learn, cut into crops; the AI class is each
crop regenerated through a small convolutional autoencoder trained here (the reconstruction recipe of
DRCT and B-Free). Real and AI images come from different crops (even / odd crop numbers), so no
picture's content appears in both classes and any split is free of pair leakage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_demo_images", "build_demo_text", "human_passages", "real_photos"]


def human_passages(n: int, min_words: int = 35, max_words: int = 110) -> list[str]:
    """Prose paragraphs (no code) of the Python documentation, deduplicated, in a fixed order."""
    import pydoc_data.topics as topics

    out: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics.topics):
        for para in re.split(r"\n\s*\n", topics.topics[key]):
            lines = para.splitlines()
            if not lines or any(ln.startswith((" ", "\t", ">>>", "*", "-", "=")) for ln in lines):
                continue
            text = " ".join(ln.strip() for ln in lines)
            words = text.split()
            letters = sum(c.isalpha() or c.isspace() for c in text) / max(1, len(text))
            if not (min_words <= len(words) <= max_words) or letters < 0.9 or text in seen:
                continue
            seen.add(text)
            out.append(text)
    return out[:n]


def build_demo_text(out: Path, n_pairs: int = 120, prompt_words: int = 12, seed: int = 0,
                    batch_size: int = 40, max_new_tokens: int = 96, device: str = "cpu") -> Path:
    """Write ``out`` (JSONL: text, label, domain, generator, pair_id, source) with human/SmolLM2 pairs.

    Reuses an existing file. Generation: sampling (top-p 0.95, temperature 0.9) from the first
    ``prompt_words`` words of each human passage, at most ``max_new_tokens`` new tokens; each pair is then
    cut to the same number of words.
    """
    if out.is_file():
        return out
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.weights import smollm2_path

    humans = human_passages(n_pairs)
    path = smollm2_path()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).eval()
    torch.manual_seed(seed)
    rows: list[dict[str, Any]] = []
    for s in tqdm(range(0, len(humans), batch_size), desc="generating machine text", unit="batch"):
        chunk = humans[s : s + batch_size]
        prompts = [" ".join(h.split()[:prompt_words]) for h in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True).to(device)
        max_new = min(max_new_tokens, int(1.4 * max(len(h.split()) for h in chunk)) + 8)
        with torch.no_grad():
            gen = model.generate(**enc, do_sample=True, top_p=0.95, temperature=0.9, max_new_tokens=max_new,
                                 pad_token_id=tok.pad_token_id, repetition_penalty=1.1)
        conts = tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for k, (h, p, c) in enumerate(zip(chunk, prompts, conts, strict=True)):
            pid = f"doc-{s + k:04d}"
            machine = (p + " " + " ".join(c.split())).strip()
            # the same number of words on both sides, so length is no shortcut
            n_words = min(len(h.split()), len(machine.split()))
            human, machine = " ".join(h.split()[:n_words]), " ".join(machine.split()[:n_words])
            rows.append({"text": human, "label": 0, "domain": "python-docs", "generator": "human", "pair_id": pid,
                         "source": "pydoc_data.topics"})
            rows.append({"text": machine, "label": 1, "domain": "python-docs", "generator": "smollm2-135m",
                         "pair_id": pid, "source": "smollm2-135m-instruct (sampled here)"})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    return out


def real_photos() -> list[tuple[str, np.ndarray]]:
    """RGB uint8 photos shipped inside scikit-image and scikit-learn (no download)."""
    photos: list[tuple[str, np.ndarray]] = []
    try:
        import skimage.data as skd

        for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry"):
            fn = getattr(skd, name, None)
            if fn is None:
                continue
            try:
                arr = np.asarray(fn())
            except Exception:  # an image that would need a download
                continue
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            photos.append((f"skimage-{name}", arr[..., :3].astype(np.uint8)))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        ds = load_sample_images()
        for fname, img in zip(ds.filenames, ds.images, strict=True):
            photos.append((f"sklearn-{Path(fname).stem}", np.asarray(img, dtype=np.uint8)))
    except ImportError:
        pass
    if not photos:
        raise RuntimeError("no sample photos found: install scikit-image or scikit-learn (the dev extra)")
    return photos


def _crops(photos: list[tuple[str, np.ndarray]], size: int, per_photo: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, arr in photos:
        h, w = arr.shape[:2]
        for k in range(per_photo):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            out.append((f"{name}-{k:03d}", arr[y : y + size, x : x + size]))
    return out


def build_demo_images(out: Path, size: int = 96, per_photo: int = 48, ae_steps: int = 300, seed: int = 0) -> Path:
    """Write ``out/real/*.png`` (even-numbered photo crops) and ``out/ai/autoencoder/*.png`` (reconstructions
    of the odd-numbered crops).

    Reuses an existing folder. The autoencoder (conv 3->32->64, stride 2 twice, mirrored with
    transposed convolutions) is trained for ``ae_steps`` steps on the crops themselves.
    """
    if (out / "real").is_dir() and (out / "ai").is_dir():
        return out
    import torch
    from PIL import Image
    from torch import nn
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    crops = _crops(real_photos(), size, per_photo, rng)
    x = torch.from_numpy(np.stack([c for _, c in crops])).permute(0, 3, 1, 2).float() / 255.0
    ae = nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Sigmoid(),
    )
    opt = torch.optim.Adam(ae.parameters(), lr=2e-3)
    for _ in tqdm(range(ae_steps), desc="training the demo autoencoder", unit="step"):
        idx = torch.from_numpy(rng.integers(0, len(x), 32))
        loss = nn.functional.mse_loss(ae(x[idx]), x[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rec = torch.cat([ae(x[s : s + 64]) for s in range(0, len(x), 64)])
    rec_u8 = (rec.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "ai" / "autoencoder").mkdir(parents=True, exist_ok=True)
    for k, ((name, crop), r) in enumerate(zip(crops, rec_u8, strict=True)):
        if k % 2 == 0:
            Image.fromarray(crop).save(out / "real" / f"{name}.png")
        else:
            Image.fromarray(r).save(out / "ai" / "autoencoder" / f"{name}.png")
    return out
