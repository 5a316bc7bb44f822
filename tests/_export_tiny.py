"""Tiny torch models, data and fake runs for the export tests (torch needed; built in a second or two)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMG = 24  # crop size of the tiny image model
WORDS_H = ["the", "a", "of", "and", "to", "in", "is", "it", "was", "for", "on", "with", "as", "by", "at"]
WORDS_A = ["moreover", "delve", "crucial", "overall", "tapestry", "notably", "furthermore", "vibrant"]


@dataclass
class FakeRun:
    """What ``training.load_run`` returns, for tests that do not train."""

    model: Any
    modality: str
    preprocessing: dict[str, Any]
    tokenizer_file: Path | None
    input_names: list[str]
    output_kind: str = "logits"
    config: dict[str, Any] = field(default_factory=lambda: {"name": "tiny"})
    provenance: dict[str, Any] = field(default_factory=lambda: {"data_fingerprint": "test", "source_revision": "test"})


def tiny_cnn() -> Any:
    """Conv(3->4) with positive weights, ReLU, global mean, Linear(4->2): the raw score grows with brightness."""
    import torch
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N,3,H,W) -> (N,2)
            h = torch.relu(self.conv(x))  # (N,4,H,W)
            return self.head(h.mean(dim=(2, 3)))

    torch.manual_seed(0)
    m = TinyCNN()
    with torch.no_grad():
        m.conv.weight.abs_().mul_(0.5)
        m.conv.bias.fill_(0.5)
        m.head.weight.copy_(torch.tensor([[-1.0, -0.5, -1.0, -0.5], [1.0, 0.5, 1.0, 0.5]]))
        m.head.bias.copy_(torch.tensor([0.8, -0.8]))
    return m.eval()


def image_preprocessing() -> dict[str, Any]:
    return {"type": "image", "size": [IMG, IMG], "resize": "shorter", "crop": "center", "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25], "interpolation": "bilinear", "rgb_rule": "v1"}


def write_images(folder: Path, n_per_class: int = 110, seed: int = 0) -> tuple[list[str], list[int]]:
    """JPEG and PNG images of 32..48 px: humans darker, AI brighter, overlapping."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items, labels = [], []
    for i in range(2 * n_per_class):
        y = i % 2
        w, h = int(rng.integers(32, 49)), int(rng.integers(32, 49))
        base = rng.normal(0.45 + 0.12 * y, 0.1)
        arr = np.clip(rng.normal(base, 0.15, (h, w, 3)), 0, 1)
        img = Image.fromarray((arr * 255).astype(np.uint8), "RGB")
        if i % 3 == 0:
            p = folder / f"{i:04d}.png"
            img.save(p)
        else:
            p = folder / f"{i:04d}.jpg"
            img.save(p, quality=int(rng.integers(80, 96)))
        items.append(str(p))
        labels.append(y)
    return items, labels


def image_run() -> FakeRun:
    return FakeRun(tiny_cnn(), "image", image_preprocessing(), None, ["pixel_values"])


def make_wordpiece(path: Path) -> Path:
    """A WordPiece tokenizer (tokenizers library) with BERT special tokens, saved as tokenizer.json."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS_H, *WORDS_A, *"abcdefghijklmnopqrstuvwxyz.,"]
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def tiny_bert() -> Any:
    """A 2-layer BertForSequenceClassification (hidden 32) wrapped to return logits only."""
    import torch
    from torch import nn
    from transformers import BertConfig, BertForSequenceClassification

    class Logits(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.model = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # (N,T) -> (N,2)
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64, num_labels=2, attn_implementation="eager")
    return Logits(BertForSequenceClassification(cfg)).eval()


def text_preprocessing() -> dict[str, Any]:
    return {"type": "text", "tokenizer": "tokenizer.json", "max_length": 16, "stride": 8, "pooling": "mean",
            "max_windows": 16, "normalize": "nfc_strip_zw", "prefix_ids": [2], "suffix_ids": [3], "pad_id": 0}


def make_texts(n_per_class: int = 110, seed: int = 0) -> tuple[list[str], list[int], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    for i in range(2 * n_per_class):
        y = i % 2
        n = int(rng.integers(8, 30))
        share = 0.05 + 0.35 * y
        words = [str(rng.choice(WORDS_A)) if rng.random() < share else str(rng.choice(WORDS_H)) for _ in range(n)]
        texts.append(" ".join(words) + ".")
        labels.append(y)
        groups.append("news" if i % 4 < 2 else "web")
    return texts, labels, groups


def text_run(folder: Path) -> FakeRun:
    tok = make_wordpiece(folder / "tokenizer" / "tokenizer.json")
    return FakeRun(tiny_bert(), "text", text_preprocessing(), tok, ["input_ids", "attention_mask"])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
