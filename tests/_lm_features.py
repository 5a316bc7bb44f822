"""A fitted ``zeroshot:features`` detector on a tiny random Llama, for export tests (torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from test_zeroshot import make_lm, make_tokenizer
from test_zeroshot_pipeline import _data


def features_run(tmp: Path, n_pairs: int = 30) -> tuple[Any, list[str], list[int], Any, Any]:
    """A fitted ``zeroshot:features`` run on a tiny Llama, its texts and labels, tokenizer and text spec."""
    from _export_tiny import FakeRun

    from training import zeroshot as zs
    from training.lmfeatures import LikelihoodFeatures

    tok = make_tokenizer()
    lm = make_lm(len(tok), 0)
    rows = [json.loads(x) for x in _data(tmp, make_lm(len(tok), 0), tok, n_pairs).read_text().splitlines()]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    model = LikelihoodFeatures(lm).eval()
    spec = zs.text_spec_for(tok, max_length=16, stride=8, max_windows=4)
    from aigc._text import TextWindows, encode_windows

    feats = []
    for enc in encode_windows(tok.backend_tokenizer, texts, spec):
        assert isinstance(enc, TextWindows)
        ids = torch.tensor([enc.windows[0]])
        with torch.no_grad():
            feats.append(model.features(ids, torch.ones_like(ids))[0].numpy())
    model.fit_head(np.asarray(feats, dtype=np.float64), np.asarray(labels))
    tok_file = tmp / "tokenizer.json"
    tok.backend_tokenizer.save(str(tok_file))
    run = FakeRun(model, "text", spec.to_dict(), tok_file, ["input_ids", "attention_mask"], "score")
    return run, texts, labels, tok, spec


