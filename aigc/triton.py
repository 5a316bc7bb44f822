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
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._bundle import Bundle, BundleError, open_bundle, text_files
from ._bundle_write import _umask

__all__ = ["TritonExportError", "add_arguments", "config_pbtxt", "export_triton", "model_dir_problem", "name_problem", "run"]

_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
          "tensor(int32)": "TYPE_INT32", "tensor(double)": "TYPE_FP64"}  # fmt: skip
_TEMPLATE = Path(__file__).with_name("_triton_client.py")
CLIENT_FILE = "aigc_triton_client.py"


class TritonExportError(ValueError):
    """``aigc export-triton`` refuses: the model name, the repository or what is at REPO/NAME."""


_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a model name this command writes, or None. The name is the model's folder in the
    repository, its ``name:`` in config.pbtxt and a segment of Triton's URLs (``/v2/models/NAME``), so only
    letters, digits, ``_``, ``-`` and ``.`` are taken, starting with a letter, digit or ``_`` (never ``.``,
    ``..``, a hidden folder or an option-like ``-x``), at most 128 characters."""
    if _NAME_RE.fullmatch(name):
        return None
    return ("is not a plain Triton model name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_', "
            "at most 128 characters; no '/', quotes, spaces, '.' or '..')")


def _dims(shape: list[Any], skip_batch: bool = True) -> list[int]:
    """ORT shape -> Triton dims without the batch axis; symbolic axes become -1."""
    s = shape[1:] if skip_batch else shape
    return [int(d) if isinstance(d, int) and d > 0 else -1 for d in s]


_IO = dict[str, tuple[str, list[Any]]]  # tensor name -> (ONNX Runtime type, shape with the batch axis first)


def _graph_io(bundle: Bundle) -> tuple[_IO, _IO]:
    """(inputs, outputs) of the fp32 graph as ONNX Runtime reads them."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle.path(bundle.spec["model"]["variants"]["fp32"])), providers=["CPUExecutionProvider"])
    return ({i.name: (i.type, list(i.shape)) for i in sess.get_inputs()},
            {o.name: (o.type, list(o.shape)) for o in sess.get_outputs()})


def _tensor(kind: str, name: str, io: _IO, want: list[int] | None = None) -> tuple[str, list[int]]:
    """(Triton type, dims after the batch axis) of the graph's ``kind`` (input/output) ``name``, which must
    exist, have a type the onnxruntime backend takes and a dynamic first axis (``max_batch_size`` >= 1 makes
    Triton batch on it and refuse a model whose first axis is fixed). ``want``: the dims the preprocessing
    gives (an image's [3, H, W]); a fixed graph dim that differs is refused. BundleError names the tensor."""
    if name not in io:
        raise BundleError(f"model.{kind}s: bundle.json names the {kind} {name!r}; the ONNX graph's {kind}s are {sorted(io)}")
    ort_type, shape = io[name]
    t = _TYPES.get(ort_type)
    if t is None:
        raise BundleError(f"model: {kind} {name!r} has type {ort_type}, which Triton's onnxruntime backend is not mapped for here")
    if not shape or (isinstance(shape[0], int) and shape[0] > 0):
        raise BundleError(f"model: {kind} {name!r} has a fixed batch axis (shape {shape}); Triton's dynamic batching "
                          "(max_batch_size >= 1) needs a dynamic first axis: export the graph with a dynamic batch axis")
    dims = _dims(shape)
    if want is None:
        return t, dims
    if len(dims) != len(want) or any(d > 0 and d != w for d, w in zip(dims, want, strict=True)):
        raise BundleError(f"model: {kind} {name!r} has dims {dims} after its batch axis; the preprocessing gives {want}")
    return t, want


def _q(s: str) -> str:
    """``s`` as a protobuf text-format string literal (quotes and backslashes escaped)."""
    esc = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{esc}"'


def config_pbtxt(bundle: Bundle, name: str, max_batch: int = 32, max_delay_us: int = 2000, kind: str = "auto") -> str:
    """The text of ``config.pbtxt`` (Triton's ModelConfig in protobuf text format) for ``bundle``."""
    if why := name_problem(name):
        raise TritonExportError(f"model name {name!r}: {why}")
    if max_batch < 1 or max_delay_us < 0:  # 0 would make the batch axis part of dims; the delay is unsigned
        what = f"max_batch: found {max_batch}, expected >= 1" if max_batch < 1 else f"max_delay_us: found {max_delay_us}, expected >= 0"
        raise TritonExportError(what)
    spec = bundle.spec
    ins, outs = _graph_io(bundle)
    want_in = [x["name"] for x in spec["model"]["inputs"]]
    if set(ins) != set(want_in):
        raise BundleError(f"model.inputs: the ONNX graph has inputs {sorted(ins)}, bundle.json says {sorted(want_in)}")
    size = [3, *map(int, spec["preprocessing"]["size"])] if spec["modality"] == "image" else None
    lines = [f"name: {_q(name)}", 'backend: "onnxruntime"', f"max_batch_size: {max_batch}", "input ["]
    entries = []
    for n in want_in:
        t, d = _tensor("input", n, ins, size)
        entries.append(f"  {{ name: {_q(n)} data_type: {t} dims: [ {', '.join(map(str, d))} ] }}")
    lines.append(",\n".join(entries))
    lines.append("]")
    lines.append("output [")
    out0 = spec["model"]["outputs"][0]["name"]
    t, d = _tensor("output", out0, outs)
    if not d:  # a rank-1 (N,) score: Triton needs a non-empty shape, reshaped to none
        lines.append(f"  {{ name: {_q(out0)} data_type: {t} dims: [ 1 ] reshape: {{ shape: [ ] }} }}")
    else:
        lines.append(f"  {{ name: {_q(out0)} data_type: {t} dims: [ {', '.join(map(str, d))} ] }}")
    lines.append("]")
    lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {max_delay_us} }}")
    if kind in ("cpu", "gpu"):
        lines.append(f"instance_group [ {{ count: 1 kind: KIND_{kind.upper()} }} ]")
    return "\n".join(lines) + "\n"


def export_triton(bundle_path: str | Path, out: str | Path, name: str | None = None, max_batch: int = 32,
                  max_delay_us: int = 2000, kind: str = "auto", overwrite: bool = False) -> Path:  # fmt: skip
    """Write the model repository entry for the bundle into ``out/NAME`` and return that folder.

    ``NAME`` (``name``, else the bundle's name) must be a plain Triton model name (:func:`name_problem`);
    every write stays inside ``out``, which may not be, hold or lie inside the bundle. An existing
    ``out/NAME`` is replaced only with ``overwrite`` and only when it is a model folder this command wrote
    (:func:`model_dir_problem`); the new folder is built beside it and swapped in by a rename, so a failed
    export leaves the old model as it was. Refusals raise :class:`TritonExportError`."""
    bundle = open_bundle(bundle_path)
    spec = bundle.spec
    if name is None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(spec.get("name") or Path(bundle_path).stem)).strip("_") or "aigc"
        why = name_problem(name)
        if why:
            raise TritonExportError(f"the bundle's name gives the model name {name!r}, which {why}; choose one with --name")
    elif why := name_problem(name):
        raise TritonExportError(f"--name {name!r}: {why}")
    repo = _check_repo(Path(out), bundle)
    model_dir = repo / name
    if model_dir.parent != repo:  # cannot happen with a checked name; kept so no write ever leaves REPO
        raise TritonExportError(f"--name {name!r}: {model_dir} lies outside the repository {repo}")
    empty = model_dir.is_dir() and not model_dir.is_symlink() and not any(model_dir.iterdir())
    if (model_dir.exists() or model_dir.is_symlink()) and not empty:
        why = model_dir_problem(model_dir)
        if why:
            raise TritonExportError(f"{why}; only a model folder written by aigc export-triton is ever replaced: "
                                    "choose another --name or --out (nothing there was touched)")
        if not overwrite:
            raise FileExistsError(f"{model_dir} exists; pass --overwrite to replace it")
    text = config_pbtxt(bundle, name, max_batch, max_delay_us, kind)
    repo.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.aigc-new-", dir=repo))
    try:
        _write_model(bundle, tmp, text, name, max_batch)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; Triton may run as another user
        _swap_in(tmp, model_dir, empty)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_dir


def _check_repo(out: Path, bundle: Bundle) -> Path:
    """``out`` resolved; refused when it is not a folder or is, holds or lies inside the bundle."""
    repo = out.resolve()
    if repo.exists() and not repo.is_dir():
        raise TritonExportError(f"--out {out}: exists and is not a folder (a model repository is a folder)")
    src = Path(bundle.source).resolve()
    if src.is_dir() and (repo == src or repo.is_relative_to(src) or src.is_relative_to(repo)):
        if src.is_relative_to(repo) and repo != src:
            why = "holds the bundle {}: Triton takes every folder of its repository for a model, the bundle's too"
        else:
            why = ("is" if repo == src else "lies inside") + " the bundle {}: an output never goes into its input"
        raise TritonExportError(f"--out {out} {why.format(bundle.source)}; choose another --out (nothing was written)")
    return repo


def _ours(model_dir: Path) -> set[str]:
    """The entries this command writes in a model folder, by the names its old bundle.json gives."""
    names = {"config.pbtxt", "bundle.json", CLIENT_FILE, "1", "1/model.onnx", "__pycache__"}
    try:
        old = json.loads((model_dir / "bundle.json").read_text(encoding="utf-8"))
        names.update(f"1/{f}" for f in old["model"].get("external_data", {}).get("fp32", []))
        if old.get("modality") == "text":
            names.update(text_files(old["preprocessing"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return names


def model_dir_problem(model_dir: Path) -> str | None:
    """Why what is at ``model_dir`` may not be replaced, or None when it is a model folder this command wrote:
    a real folder with config.pbtxt, bundle.json and the client, and nothing else but ``1/`` with the model
    (another version, a labels file or any file of the user's is never deleted)."""
    if model_dir.is_symlink():
        return f"{model_dir} exists and is a link"
    if not model_dir.is_dir():
        return f"{model_dir} exists and is a file"
    if not all((model_dir / f).is_file() for f in ("config.pbtxt", "bundle.json", CLIENT_FILE)):
        return f"{model_dir} exists and is not a Triton model folder of aigc's (no config.pbtxt, bundle.json and {CLIENT_FILE})"
    ours = _ours(model_dir)
    version = model_dir / "1"
    found = [p.name for p in model_dir.iterdir()]
    if version.is_dir() and not version.is_symlink():
        found += [f"1/{p.name}" for p in version.iterdir()]
    others = sorted(f for f in found if f not in ours)
    if version.is_symlink() or not version.is_dir():
        others.insert(0, "1 (not a folder)")
    if others:
        return f"{model_dir} holds files aigc export-triton did not write ({', '.join(others[:5])})"
    return None


def _write_model(bundle: Bundle, model_dir: Path, text: str, name: str, max_batch: int) -> None:
    spec = bundle.spec
    (model_dir / "1").mkdir()
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


def _swap_in(tmp: Path, model_dir: Path, empty: bool) -> None:
    """Put the finished folder ``tmp`` at ``model_dir`` by renames; the old model is removed only after."""
    if empty:
        model_dir.rmdir()
    if not model_dir.exists():
        os.replace(tmp, model_dir)
        return
    old = model_dir.with_name(f".{model_dir.name}.aigc-old-{os.getpid()}")
    os.replace(model_dir, old)
    try:
        os.replace(tmp, model_dir)
    except BaseException:
        os.replace(old, model_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder or .zip")
    p.add_argument("--out", required=True, metavar="REPO", help="model repository folder (REPO/NAME is written)")
    p.add_argument("--name", default=None, help="model name in Triton (default: the bundle's name)")
    p.add_argument("--max-batch", type=int, default=32, help="max_batch_size of the model (default: 32)")
    p.add_argument("--max-delay-us", type=int, default=2000, help="dynamic batching's max queue delay in µs (default: 2000)")
    p.add_argument("--kind", choices=("auto", "cpu", "gpu"), default="auto", help="instance kind (default: Triton's choice)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing REPO/NAME")


def run(args: argparse.Namespace) -> int:
    for flag, value, least in (("--max-batch", args.max_batch, 1), ("--max-delay-us", args.max_delay_us, 0)):
        if value < least:
            print(f"aigc export-triton: {flag}: found {value}, expected >= {least}", file=sys.stderr)
            return 2
    try:
        d = export_triton(args.bundle, args.out, args.name, args.max_batch, args.max_delay_us, args.kind, args.overwrite)
    except (BundleError, TritonExportError, OSError) as e:
        print(f"aigc export-triton: {e}", file=sys.stderr)
        return 2
    print(f"wrote {d} (config.pbtxt, 1/model.onnx, {CLIENT_FILE}); serve with: tritonserver --model-repository {Path(args.out).resolve()}")
    return 0
