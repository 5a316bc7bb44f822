"""``aigc export-triton BUNDLE --out REPO``: a Triton Inference Server model repository for a bundle.

Writes ``REPO/NAME/``::

    config.pbtxt              onnxruntime backend, dynamic batching, the bundle's input/output names and shapes
    1/model.onnx              the bundle's fp32 model
    1/model.onnx.data         its weights, where the bundle keeps them in external data (a large LM)
    bundle.json               the bundle's spec (thresholds, calibration, preprocessing)
    tokenizer.json            text bundles only
    aigc_triton_client.py     preprocessing, calibration and thresholds with ``aigc``, the model on Triton

Triton runs only the ONNX graph; everything around it stays in ``aigc`` (the client builds an
:class:`aigc.Detector` whose session is Triton), so a score through Triton equals ``aigc score``'s.
Needs nothing beyond the runtime; the client needs ``tritonclient[http]`` where it runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ._bundle import Bundle, BundleError, open_bundle, text_files

__all__ = ["add_arguments", "config_pbtxt", "export_triton", "run"]

_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
          "tensor(int32)": "TYPE_INT32", "tensor(double)": "TYPE_FP64"}  # fmt: skip
_TEMPLATE = Path(__file__).with_name("_triton_client.py")
CLIENT_FILE = "aigc_triton_client.py"


def _dims(shape: list[Any], skip_batch: bool = True) -> list[int]:
    """ORT shape -> Triton dims without the batch axis; symbolic axes become -1."""
    s = shape[1:] if skip_batch else shape
    return [int(d) if isinstance(d, int) and d > 0 else -1 for d in s]


def _graph_io(bundle: Bundle) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    """(inputs, outputs) of the fp32 graph as (name, Triton type, dims without batch)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle.path(bundle.spec["model"]["variants"]["fp32"])), providers=["CPUExecutionProvider"])
    ins = [(i.name, _TYPES.get(i.type, ""), _dims(list(i.shape))) for i in sess.get_inputs()]
    outs = [(o.name, _TYPES.get(o.type, ""), _dims(list(o.shape))) for o in sess.get_outputs()]
    for name, t, _ in ins + outs:
        if not t:
            raise BundleError(f"model: tensor {name!r} has a type Triton's onnxruntime backend is not mapped for here")
    return ins, outs


def config_pbtxt(bundle: Bundle, name: str, max_batch: int = 32, max_delay_us: int = 2000, kind: str = "auto") -> str:
    """The text of ``config.pbtxt`` (Triton's ModelConfig in protobuf text format) for ``bundle``."""
    spec = bundle.spec
    ins, outs = _graph_io(bundle)
    want_in = [x["name"] for x in spec["model"]["inputs"]]
    out0 = spec["model"]["outputs"][0]["name"]
    by_name = {n: (t, d) for n, t, d in ins}
    lines = [f'name: "{name}"', 'backend: "onnxruntime"', f"max_batch_size: {max_batch}", "input ["]
    entries = []
    for n in want_in:
        t, d = by_name[n]
        if spec["modality"] == "image":
            h, w = spec["preprocessing"]["size"]
            d = [3, int(h), int(w)]
        entries.append(f'  {{ name: "{n}" data_type: {t} dims: [ {", ".join(map(str, d))} ] }}')
    lines.append(",\n".join(entries))
    lines.append("]")
    lines.append("output [")
    t, d = next((t, d) for n, t, d in outs if n == out0)
    if not d:  # a rank-1 (N,) score: Triton needs a non-empty shape, reshaped to none
        lines.append(f'  {{ name: "{out0}" data_type: {t} dims: [ 1 ] reshape: {{ shape: [ ] }} }}')
    else:
        lines.append(f'  {{ name: "{out0}" data_type: {t} dims: [ {", ".join(map(str, d))} ] }}')
    lines.append("]")
    lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {max_delay_us} }}")
    if kind in ("cpu", "gpu"):
        lines.append(f"instance_group [ {{ count: 1 kind: KIND_{kind.upper()} }} ]")
    return "\n".join(lines) + "\n"


def export_triton(bundle_path: str | Path, out: str | Path, name: str | None = None, max_batch: int = 32,
                  max_delay_us: int = 2000, kind: str = "auto", overwrite: bool = False) -> Path:  # fmt: skip
    """Write the model repository entry for the bundle into ``out/NAME`` and return that folder."""
    bundle = open_bundle(bundle_path)
    spec = bundle.spec
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", str(spec.get("name") or Path(bundle_path).stem)).strip("_") or "aigc"
    model_dir = Path(out) / name
    if model_dir.exists() and not overwrite:
        raise FileExistsError(f"{model_dir} exists; pass --overwrite to replace it")
    text = config_pbtxt(bundle, name, max_batch, max_delay_us, kind)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    (model_dir / "1").mkdir(parents=True)
    shutil.copyfile(bundle.path(spec["model"]["variants"]["fp32"]), model_dir / "1" / "model.onnx")
    for data in spec["model"].get("external_data", {}).get("fp32", []):  # beside the graph, by the name it refers to
        shutil.copyfile(bundle.path(data), model_dir / "1" / data)
    shutil.copyfile(bundle.path("bundle.json"), model_dir / "bundle.json")
    if spec["modality"] == "text":
        for tok_file in text_files(spec["preprocessing"]):
            shutil.copyfile(bundle.path(tok_file), model_dir / tok_file)
    (model_dir / "config.pbtxt").write_text(text, encoding="utf-8")
    client = _TEMPLATE.read_text(encoding="utf-8")
    client = client.replace('MODEL_NAME = "aigc"', f"MODEL_NAME = {name!r}").replace("MAX_BATCH_SIZE = 32", f"MAX_BATCH_SIZE = {max_batch}")
    (model_dir / CLIENT_FILE).write_text(client, encoding="utf-8")
    return model_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder or .zip")
    p.add_argument("--out", required=True, metavar="REPO", help="model repository folder (REPO/NAME is written)")
    p.add_argument("--name", default=None, help="model name in Triton (default: the bundle's name)")
    p.add_argument("--max-batch", type=int, default=32, help="max_batch_size of the model (default: 32)")
    p.add_argument("--max-delay-us", type=int, default=2000, help="dynamic batching's max queue delay in µs (default: 2000)")
    p.add_argument("--kind", choices=("auto", "cpu", "gpu"), default="auto", help="instance kind (default: Triton's choice)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing REPO/NAME")


def run(args: argparse.Namespace) -> int:
    if args.max_batch < 1:
        print(f"aigc export-triton: --max-batch: found {args.max_batch}, expected >= 1", file=sys.stderr)
        return 2
    try:
        d = export_triton(args.bundle, args.out, args.name, args.max_batch, args.max_delay_us, args.kind, args.overwrite)
    except (BundleError, FileExistsError, OSError) as e:
        print(f"aigc export-triton: {e}", file=sys.stderr)
        return 2
    print(f"wrote {d} (config.pbtxt, 1/model.onnx, {CLIENT_FILE}); serve with: tritonserver --model-repository {Path(args.out).resolve()}")
    return 0
