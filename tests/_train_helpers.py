"""Tiny data and tiny random-weight models for the training tests (no hub, no network).

Images: ``real/`` holds smooth colour fields, ``ai/<generator>/`` the same plus a faint periodic pattern
(the kind of trace detectors learn). Texts: human and machine sentences from two word pools.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _ensure_training_package() -> None:
    """Import ``training`` from this checkout as a regular package.

    An editable install made before training/__init__.py existed maps ``training`` to a namespace package,
    which hides the package's API (``from training import load_run`` fails). Putting the repository first
    on sys.path, and dropping a namespace ``training`` already imported, fixes that for these tests.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    mod = sys.modules.get("training")
    if mod is not None and getattr(mod, "__file__", None) is None:
        for k in [k for k in sys.modules if k == "training" or k.startswith("training.")]:
            del sys.modules[k]


_ensure_training_package()

HUMAN_WORDS = "the old man walked slowly along the river and wondered about rain yesterday morning".split()
AI_WORDS = "furthermore it is important to note that overall this comprehensive approach delves into".split()


def make_image_folder(root: Path, n_per_class: int = 8, size: int = 40, seed: int = 0) -> Path:
    """``root/real/*.png`` and ``root/ai/{gan,diff}/*.png`` of ``size`` x ``size + 8`` pixels."""
    rng = np.random.default_rng(seed)
    for label, sub in ((0, "real"), (1, "ai/gan"), (1, "ai/diff")):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        n = n_per_class if label == 0 else n_per_class // 2
        for i in range(n):
            h, w = size, size + 8
            base = rng.uniform(40, 200, size=(1, 1, 3)) + rng.normal(0, 8, size=(h, w, 3))
            if label == 1:
                yy, xx = np.mgrid[0:h, 0:w]
                base = base + 25.0 * ((yy + xx) % 2)[..., None]
            Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return root


def text_rows(n_pairs: int = 24, seed: int = 0, domains: tuple[str, ...] = ("news", "wiki")) -> list[dict[str, Any]]:
    """Human/machine pairs sharing a pair_id; machine texts come from a different word pool."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n_pairs):
        dom = domains[i % len(domains)]
        n = rnd.randint(8, 30)
        human = " ".join(rnd.choice(HUMAN_WORDS) for _ in range(n))
        machine = " ".join(human.split()[:3] + [rnd.choice(AI_WORDS) for _ in range(n)])
        gen = "gen-a" if i % 3 else "gen-b"
        rows.append({"text": human, "label": 0, "domain": dom, "generator": "human", "pair_id": f"p{i}", "source": "t"})
        rows.append({"text": machine, "label": 1, "domain": dom, "generator": gen, "pair_id": f"p{i}", "source": "t"})
    return rows


def make_text_jsonl(path: Path, n_pairs: int = 24, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in text_rows(n_pairs, seed):
            f.write(json.dumps(r) + "\n")
    return path


def tiny_tokenizer(dirpath: Path) -> Any:
    """A BERT-style WordLevel fast tokenizer built with ``tokenizers`` (adds [CLS] .. [SEP] itself)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted(set(HUMAN_WORDS + AI_WORDS + "a b c the of and".split()))
    vocab = {t: i for i, t in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(dirpath)
    return fast


def tiny_bert_dir(dirpath: Path, seed: int = 0) -> Path:
    """A folder with a random 1-layer BertForSequenceClassification and its tokenizer (hf:<folder>)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    dirpath.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer(dirpath)
    torch.manual_seed(seed)
    conf = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(conf).save_pretrained(dirpath)
    return dirpath


def tiny_clip_dir(dirpath: Path, image_size: int = 32, seed: int = 0) -> Path:
    """A folder with a random tiny CLIPVisionModel (for ``clip-probe`` with model.backbone=<folder>)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    conf = CLIPVisionConfig(image_size=image_size, patch_size=8, hidden_size=16, intermediate_size=32,
                            num_hidden_layers=1, num_attention_heads=2, projection_dim=8)
    CLIPVisionModel(conf).save_pretrained(dirpath)
    return dirpath


def tiny_llama_dir(dirpath: Path, seed: int = 0) -> Path:
    """A random 1-layer causal LM with the tiny WordLevel tokenizer (for ``zeroshot:*``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dirpath.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer(dirpath)
    torch.manual_seed(seed)
    conf = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                       pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(conf).save_pretrained(dirpath)
    return dirpath


def image_overrides(data_dir: Path, model: str, extra: list[str] | None = None) -> list[str]:
    return [
        f"data.train={data_dir}", "data.dev_fraction=0.3", "model.input_size=32", f"model.name={model}",
        "train.batch_size=4", "train.max_steps=2", "train.eval_every=2", "train.progress=false",
        "train.threads=1", "eval.batch_size=8", "data.blur_prob=0.5", "data.jpeg_prob=0.5", *(extra or []),
    ]


def text_overrides(data_file: Path, model: str, extra: list[str] | None = None) -> list[str]:
    return [
        f"data.train={data_file}", "data.group_by=pair_id", "data.group_human_text=true", "data.dev_fraction=0.3",
        f"model.name={model}", "data.max_length=16", "data.stride=8", "train.batch_size=4", "train.max_steps=2",
        "train.eval_every=2", "train.progress=false", "train.threads=1", "train.lr=1e-3", *(extra or []),
    ]
