"""The bundle format (schema v1): validate on load, write atomically. See docs/bundle.md.

This module reads and validates bundles (``BundleError``, ``validate_spec``, ``load_bundle_spec``,
``open_bundle``, ``model_files``, ``sha256_file``, ``spec_for_variant``). Two sides live elsewhere and are
re-exported here at the end of the module, so every name imports from ``aigc._bundle`` as before:
the checks of calibration and thresholds that ``validate_spec`` calls (``_check_calibration_and_thresholds``,
``_check_threshold``, ``_check_variant_calibration``, ``_finite``, ``_CAL_METHODS``) in
:mod:`aigc._bundle_check`, and the writing side (``write_bundle``, ``zip_bundle``, ``place_bundle``,
``not_replaceable``, ``_umask``) in :mod:`aigc._bundle_write`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._printable import has_controls, printable

__all__ = [
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "Bundle",
    "BundleError",
    "load_bundle_spec",
    "model_files",
    "not_replaceable",
    "open_bundle",
    "place_bundle",
    "refused_note",
    "sha256_file",
    "spec_for_variant",
    "validate_spec",
    "write_bundle",
]

FORMAT_VERSION = 3  # the newest bundle schema this aigc reads and writes
READABLE_VERSIONS = (1, 2, 3)
# v2 = v1 + ``calibration.prevalence`` (aigc calibrate --prevalence), which moves every P(ai): an aigc that
# reads v1 only would ignore it and report unadjusted probabilities, so such a bundle says v2 and that aigc
# refuses it. A bundle without it stays v1, readable by older aigc.
# v3 = v2 + ``variant_calibration``: an int8 / fp16 variant's own calibration and thresholds, fitted on its own
# scores of the calibration split (int8 of an LM moves probabilities by up to 0.5); an aigc that reads v2 would
# apply fp32's thresholds to that variant's scores, so such a bundle says v3.


def format_version_for(spec: dict[str, Any]) -> int:
    """The oldest schema version that carries everything ``spec`` holds (1; 2 with a prevalence shift; 3 with
    per-variant calibration)."""
    if spec.get("variant_calibration"):
        return 3
    cal = spec.get("calibration")
    return 2 if isinstance(cal, dict) and cal.get("prevalence") else 1

KNOWN_VARIANTS = ("fp32", "int8", "fp16")
_POOLING = ("mean", "max", "first")


class BundleError(ValueError):
    """A bundle is unusable. The message names the field, what was found and what was expected."""


@dataclass
class Bundle:
    """A validated bundle on disk: ``root`` is the folder (a zip is extracted to a temporary folder)."""

    root: Path
    spec: dict[str, Any]
    source: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def modality(self) -> str:
        return str(self.spec["modality"])

    @functools.cached_property
    def json_sha256(self) -> str:
        """The sha256 of ``bundle.json`` (which holds the sha256 of every other file): the bundle's identity in
        run records, the service and Spark rows. Hashed once, on first use."""
        return sha256_file(self.root / "bundle.json")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _need(d: dict[str, Any], key: str, where: str, types: type | tuple[type, ...], expected: str) -> Any:
    if key not in d:
        raise BundleError(f"{where}{key}: missing, expected {expected}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,))):
        raise BundleError(f"{where}{key}: found {v!r} ({type(v).__name__}), expected {expected}")
    return v


def _check_name(name: Any, where: str) -> None:
    """A name a person reads (the bundle's, a threshold's): no control, bidi or line-separator character,
    which would let bundle.json rewrite what ``aigc info`` or a report shows."""
    if isinstance(name, str) and has_controls(name):
        raise BundleError(f"{where}: found {name!r}, expected a name without control characters "
                          "(ANSI escapes, newlines, bidi overrides)")


VARIANT_CALIBRATED = ("calibration", "thresholds", "group_thresholds", "score_histogram")


def refused_note(spec: dict[str, Any], variant: str) -> str:
    """``"; export refused it: <reason>"`` for a variant that ``aigc export --drop-refused`` left out of the
    bundle (``variants_eval.<variant>.refused``), else ``""``: the tail of a "no such variant" message."""
    ev = (spec.get("variants_eval") or {}).get(variant)
    reason = ev.get("refused") if isinstance(ev, dict) else None
    return f"; export refused it: {reason}" if reason else ""


def forced_reason(ev: Any) -> str | None:
    """Why the AUROC gate refused a variant that ``aigc export --force`` shipped anyway, from its
    ``variants_eval`` record (the gate's words, or for bundles exported before they were kept, its
    figures), else None."""
    if not isinstance(ev, dict) or not ev.get("forced"):
        return None
    return ev.get("forced_reason") or (f"AUROC {ev.get('auroc')} against fp32's on {ev.get('n')} calibration "
                                       f"items (change {ev.get('auroc_delta')})")


def forced_note(spec: dict[str, Any], variant: str) -> str | None:
    """The warning for scoring ``variant`` when ``aigc export --force`` shipped it past the AUROC gate that
    refused it (``variants_eval.<variant>.forced``), else None: its scores rank the calibration split worse
    than fp32's by more than the gate allows, which whoever reads them should know."""
    why = forced_reason((spec.get("variants_eval") or {}).get(variant))
    if why is None:
        return None
    return (f"bundle {spec.get('name', '?')!r}: its {variant} variant failed the export's AUROC gate and was "
            f"shipped with --force: {why}; the fp32 variant is the one that passed")


def spec_for_variant(spec: dict[str, Any], variant: str) -> dict[str, Any]:
    """The bundle spec as ``variant`` scores: its own calibration, thresholds, group thresholds and score
    histogram (``variant_calibration``, v3) in place of fp32's. A bundle without them (v1/v2, or fp32) is
    returned as it is: its variants then share fp32's calibration, as they always did."""
    own = (spec.get("variant_calibration") or {}).get(variant)
    if not own:
        return spec
    out = {k: v for k, v in spec.items() if k not in VARIANT_CALIBRATED}
    out.update({k: own[k] for k in VARIANT_CALIBRATED if k in own})
    return out


def validate_spec(spec: Any) -> None:
    """Check every field of a bundle.json object (not the files); raise BundleError naming the first problem."""
    if not isinstance(spec, dict):
        raise BundleError(f"bundle.json: found {type(spec).__name__}, expected a JSON object")
    fv = spec.get("format_version")
    if isinstance(fv, bool) or fv not in READABLE_VERSIONS:
        raise BundleError(
            f"format_version: found {fv!r}, expected one of {', '.join(map(str, READABLE_VERSIONS))} (this aigc "
            f"reads bundle schemas v1-v{FORMAT_VERSION}; upgrade aigc for newer bundles)"
        )
    _check_name(spec.get("name"), "name")
    modality = _need(spec, "modality", "", str, "'image' or 'text'")
    if modality not in ("image", "text"):
        raise BundleError(f"modality: found {modality!r}, expected 'image' or 'text'")
    labels = _need(spec, "labels", "", list, "two label names [human, ai]")
    if len(labels) != 2 or not all(isinstance(x, str) and x for x in labels) or labels[0] == labels[1]:
        raise BundleError(f"labels: found {labels!r}, expected two distinct names [human, ai]")

    model = _need(spec, "model", "", dict, "an object with variants, inputs, outputs, output_kind")
    variants = _need(model, "variants", "model.", dict, "{variant: file} with at least fp32")
    if "fp32" not in variants:
        raise BundleError(f"model.variants: found {sorted(variants)}, expected an 'fp32' entry")
    for k, v in variants.items():
        if k not in KNOWN_VARIANTS:
            raise BundleError(f"model.variants.{printable(k)}: unknown variant, expected one of {list(KNOWN_VARIANTS)}")
        if not isinstance(v, str) or not v:
            raise BundleError(f"model.variants.{k}: found {v!r}, expected a file name")
    inputs = _need(model, "inputs", "model.", list, "a list of {name, rank, dtype}")
    outputs = _need(model, "outputs", "model.", list, "a list of {name, rank}")
    for i, io_ in enumerate(inputs + outputs):
        where = f"model.inputs[{i}]" if i < len(inputs) else f"model.outputs[{i - len(inputs)}]"
        if not isinstance(io_, dict) or not isinstance(io_.get("name"), str) or not isinstance(io_.get("rank"), int):
            raise BundleError(f"{where}: found {io_!r}, expected {{name: str, rank: int}}")
    if not outputs:
        raise BundleError("model.outputs: found an empty list, expected at least one output")
    lpt = model.get("logits_per_token")
    if lpt is not None and (not isinstance(lpt, int) or isinstance(lpt, bool) or lpt < 1):
        raise BundleError(f"model.logits_per_token: found {lpt!r}, expected a positive int (LM vocabulary x LMs)")
    kind = _need(model, "output_kind", "model.", str, "'logits' or 'score'")
    want_rank = {"logits": 2, "score": 1}.get(kind)
    if want_rank is None:
        raise BundleError(f"model.output_kind: found {kind!r}, expected 'logits' or 'score'")
    if outputs[0]["rank"] != want_rank:
        raise BundleError(
            f"model.outputs[0].rank: found {outputs[0]['rank']}, expected {want_rank} for output_kind {kind!r}"
        )
    names = [x["name"] for x in inputs]
    if modality == "image":
        if len(inputs) != 1 or inputs[0]["rank"] != 4:
            raise BundleError(f"model.inputs: found {[(x['name'], x['rank']) for x in inputs]}, expected one input of rank 4 (N,3,H,W)")
    else:
        for req in ("input_ids", "attention_mask"):
            if req not in names:
                raise BundleError(f"model.inputs: found {names}, expected {req!r} (rank 2) for a text bundle")
        for x in inputs:
            if x["rank"] != 2:
                raise BundleError(f"model.inputs.{printable(x['name'])}.rank: found {x['rank']}, expected 2 (N,T)")
            if x["name"] not in ("input_ids", "attention_mask", "token_type_ids", "input_ids_b", "attention_mask_b"):
                raise BundleError(f"model.inputs.{printable(x['name'])}: unexpected text input, expected input_ids/attention_mask/"
                                  "token_type_ids (and input_ids_b/attention_mask_b with preprocessing.companion)")
        paired = {"input_ids_b", "attention_mask_b"} & set(names)
        has_companion = isinstance(spec.get("preprocessing"), dict) and spec["preprocessing"].get("companion") is not None
        if (paired and paired != {"input_ids_b", "attention_mask_b"}) or bool(paired) != has_companion:
            raise BundleError(f"model.inputs: found {names}; input_ids_b and attention_mask_b come together, and "
                              "only with preprocessing.companion (a second tokenizer)")

    pre = _need(spec, "preprocessing", "", dict, "the preprocessing spec object")
    ptype = pre.get("type")
    if ptype != modality:
        raise BundleError(f"preprocessing.type: found {ptype!r}, expected {modality!r} (the bundle's modality)")
    if modality == "image":
        from ._image import ImageSpec

        try:
            ImageSpec.from_dict(pre)
        except (ValueError, TypeError, IndexError) as e:
            raise BundleError(printable(e)) from None
    else:
        _need(pre, "tokenizer", "preprocessing.", str, "the tokenizer file name")
        ml = _need(pre, "max_length", "preprocessing.", int, "tokens per window (int >= 8)")
        if ml < 8:
            raise BundleError(f"preprocessing.max_length: found {ml}, expected >= 8")
        st = _need(pre, "stride", "preprocessing.", int, "window stride in tokens (int >= 1)")
        if st < 1:
            raise BundleError(f"preprocessing.stride: found {st}, expected >= 1")
        pool = pre.get("pooling", "mean")
        if pool not in _POOLING:
            raise BundleError(f"preprocessing.pooling: found {pool!r}, expected one of {list(_POOLING)}")

    _check_calibration_and_thresholds(spec, "")
    _check_variant_calibration(spec)
    files = _need(spec, "files", "", dict, "{file: sha256} for every file of the bundle")
    external = model_files(spec)
    for v in external + (text_files(pre) if modality == "text" else []):
        if v not in files:
            raise BundleError(f"files: {v!r} is used by the bundle but has no sha256 entry")
    _need(spec, "provenance", "", dict, "an object (config, data fingerprint, versions, created)")
    pp = spec.get("provenance_policy")
    if pp is not None:
        from .provenance import POLICIES

        if pp not in POLICIES:
            raise BundleError(f"provenance_policy: found {pp!r}, expected one of {sorted(POLICIES)}")


def text_files(pre: dict[str, Any]) -> list[str]:
    """The tokenizer files a text spec names: ``tokenizer``, and the companion's when it has one."""
    comp = pre.get("companion")
    if comp is not None and not (isinstance(comp, dict) and isinstance(comp.get("tokenizer"), str)):
        raise BundleError("preprocessing.companion.tokenizer: expected the second tokenizer's file name")
    return [pre["tokenizer"]] + ([comp["tokenizer"]] if comp is not None else [])


def model_files(spec: dict[str, Any], variant: str | None = None) -> list[str]:
    """The files of the model (every variant, or one): each graph, then its ONNX external data files
    (``model.external_data``: ``{variant: [file, ...]}``, plain names beside the graph). Raises
    BundleError for a malformed ``model.external_data``."""
    model = spec["model"]
    variants = model["variants"]
    ext = model.get("external_data", {})
    if not isinstance(ext, dict):
        raise BundleError(f"model.external_data: found {ext!r}, expected {{variant: [file, ...]}}")
    out: list[str] = []
    for v, graph in variants.items():
        if variant is not None and v != variant:
            continue
        out.append(graph)
        names = ext.get(v, [])
        if not isinstance(names, list):
            raise BundleError(f"model.external_data.{printable(v)}: found {names!r}, expected a list of file names")
        for name in names:
            if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
                raise BundleError(f"model.external_data.{printable(v)}: found {name!r}, expected a file name at the top of the bundle")
            out.append(name)
    for v in ext:
        if v not in variants:
            raise BundleError(f"model.external_data.{printable(v)}: no such variant in model.variants ({sorted(variants)})")
    return out


def bundle_subfolders(folder: Path) -> list[Path]:
    """The immediate sub-folders of ``folder`` that hold a bundle.json, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "bundle.json").is_file())


def _find_root(folder: Path) -> Path:
    if (folder / "bundle.json").is_file():
        return folder
    subs = bundle_subfolders(folder)
    if len(subs) == 1:
        return subs[0]
    raise BundleError(f"{folder}: no bundle.json at the top level or in a single sub-folder")


def load_bundle_spec(root: Path, verify_files: bool = True) -> dict[str, Any]:
    """Read, validate and (by default) check every file's sha256. Returns the spec dict."""
    bj = root / "bundle.json"
    try:
        spec = json.loads(bj.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{root}: bundle.json missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"bundle.json: not valid JSON ({e})") from None
    validate_spec(spec)
    if verify_files:
        for name, digest in spec["files"].items():
            p = root / name
            if not p.is_file():
                raise BundleError(f"files.{printable(name)}: listed in bundle.json but missing from {root}")
            got = sha256_file(p)
            if got != digest:
                raise BundleError(f"files.{printable(name)}: sha256 is {got[:16]}..., expected {str(digest)[:16]}... (file changed or corrupt)")
    return spec


def extract_zip(src: Path, dest: Path) -> None:
    """Extract the bundle zip ``src`` into the folder ``dest``; BundleError for a member that would land outside
    it or a corrupt zip (what it leaves in ``dest`` then is the caller's to remove)."""
    try:
        with zipfile.ZipFile(src) as zf:
            for member in zf.namelist():
                target = (dest / member).resolve()
                if not str(target).startswith(str(dest.resolve())):
                    raise BundleError(f"{src}: zip member {member!r} escapes the bundle folder")
            zf.extractall(dest)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, UnicodeDecodeError) as e:
        raise BundleError(f"{src}: the zip is corrupt ({type(e).__name__}: {e}); copy or download it again") from None


def open_bundle(path: str | os.PathLike[str], verify_files: bool = True) -> Bundle:
    """Open a bundle folder or ``.zip``, validate it, and return a :class:`Bundle`."""
    src = Path(path)
    if not src.exists():
        raise BundleError(f"{src}: no such bundle (expected a folder or a .zip)")
    if src.is_dir():
        root = _find_root(src)
        return Bundle(root, load_bundle_spec(root, verify_files), src)
    if zipfile.is_zipfile(src):
        tmp = tempfile.TemporaryDirectory(prefix="aigc-bundle-")
        try:
            extract_zip(src, Path(tmp.name))
        except BaseException:
            tmp.cleanup()
            raise
        root = _find_root(Path(tmp.name))
        return Bundle(root, load_bundle_spec(root, verify_files), src, tmp)
    raise BundleError(f"{src}: not a folder and not a zip file")


# The calibration and threshold checks and the writing side, re-exported (after everything above:
# aigc._bundle_check and aigc._bundle_write import from this module).
from ._bundle_check import (  # noqa: E402, F401
    _CAL_METHODS,
    _check_calibration_and_thresholds,
    _check_threshold,
    _check_variant_calibration,
    _finite,
)
from ._bundle_write import _umask, check_replaceable, not_replaceable, place_bundle, write_bundle, zip_bundle  # noqa: E402, F401
