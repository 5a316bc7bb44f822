"""Score a Spark DataFrame with a bundle: ``aigc.spark.score_dataframe(df, "bundle.zip", "path")``.

A thin door over :class:`aigc.Detector` (install the ``spark`` extra and a Java 17 runtime). The rows go
through ``mapInPandas`` as Arrow batches; each executor's Python worker opens the bundle once and keeps
it in a module-level cache keyed by its path, sha256 and load options, so a bundle is loaded once per process, not per
batch; a ``.zip`` is extracted once per node and shared by the workers (:func:`_extracted`). The bundle travels with Spark's own ``SparkContext.addFile`` (a folder zipped first; either under
a name that carries its digest, so two bundles of one file name never clash), or is
read from a path every node can read (``ship=False``); where it lands its sha256 is checked against the
driver's before it is used, and a mismatch fails the task (a wrong model is not a bad row).

Items are what the column holds: paths (string) or bytes (binary) for image bundles, texts (string) for
text bundles. The output is the input's columns plus those of ``aigc score``: ``probability``, ``label``,
``threshold_name``, ``threshold``, ``out_of_support``, ``support_reasons``, ``warnings``, ``error`` and
``meta`` (JSON, with every key of the modality as ``aigc score`` writes it, null where unknown), for image
bundles ``provenance`` (JSON, the part ``aigc score`` adds to an image row: C2PA/XMP/EXIF/PNG evidence and the
policy's final label; null for a row with none) with two columns derived from it for filters and joins,
``provenance_verdict`` and ``provenance_final_label`` (``provenance=False``, like ``--no-provenance``, leaves the
three out), then what produced it: ``bundle_name``, ``bundle_sha256`` (of its bundle.json, as ``aigc
score``'s run record gives it) and ``variant``. A row that cannot be scored (missing file, not an image,
null, empty text) gets its ``error`` and null probability; it never fails the task.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ._spark_ship import (  # noqa: F401  NODE_CACHE, _extracted, _zip_folder: the shipping half, used by tests
    NODE_CACHE,
    _extracted,
    _named_zip,
    _zip_folder,
    bundle_digest,
    bundle_file_names,
)

__all__ = ["OUTPUT_FIELDS", "bundle_digest", "bundle_file_names", "output_fields", "score_dataframe", "score_pandas"]

OUTPUT_FIELDS = ["probability", "label", "threshold_name", "threshold", "out_of_support", "support_reasons",
                 "warnings", "error", "meta", "bundle_name", "bundle_sha256", "variant"]
PROVENANCE_FIELD = "provenance"  # after meta, for image bundles that read provenance
# derived from the JSON for filters and joins, as aigc score's CSV derives provenance.verdict and .final_label
PROVENANCE_FLAT = ("provenance_verdict", "provenance_final_label")


def output_fields(modality: str, provenance: Any = False) -> list[str]:
    """The columns a scored row holds: ``OUTPUT_FIELDS``, with ``provenance``, ``provenance_verdict`` and
    ``provenance_final_label`` after ``meta`` for an image bundle when provenance is read (``provenance`` True or
    a ProvenanceOptions)."""
    if not provenance or modality != "image":
        return list(OUTPUT_FIELDS)
    i = OUTPUT_FIELDS.index("meta") + 1
    return [*OUTPUT_FIELDS[:i], PROVENANCE_FIELD, *PROVENANCE_FLAT, *OUTPUT_FIELDS[i:]]

_DETECTORS: dict[tuple[Any, ...], Any] = {}  # (path, sha256, options) -> Detector, one per executor Python process
_LOCK = threading.Lock()

def _detector(path: str, sha256: str, options: dict[str, Any], shipped: bool = False) -> Any:
    """The process's Detector for this bundle and these load options (variant, threads, ...), loaded (and
    its digest checked) on first use; a ``.zip`` is opened from the node's one extraction (:func:`_extracted`:
    beside it when Spark ``shipped`` it, else under the temporary folder)."""
    key = (path, sha256, *sorted(options.items()))
    with _LOCK:
        det = _DETECTORS.get(key)
        if det is None:
            got = bundle_digest(path)
            if got != sha256:
                raise RuntimeError(f"bundle {path}: sha256 {got} where the driver sent {sha256} (a different or "
                                   "partly copied bundle); refusing to score with it")
            from ._detector import load

            src = Path(path)
            det = load(_extracted(src, sha256, src.parent if shipped else None) if src.is_file() else src, **options)
            _DETECTORS[key] = det
        return det


def _driver_spec(src: Path) -> dict[str, Any]:
    """The bundle's bundle.json, validated, read on the driver without extracting a .zip or hashing its
    files (each executor checks those where it opens the bundle). BundleError names what is wrong."""
    from ._bundle import BundleError, _find_root, load_bundle_spec, validate_spec

    if src.is_dir():
        return load_bundle_spec(_find_root(src), verify_files=False)
    try:
        with zipfile.ZipFile(src) as zf:
            found = [n for n in zf.namelist() if PurePosixPath(n).name == "bundle.json" and len(PurePosixPath(n).parts) <= 2]
            top = [n for n in found if n == "bundle.json"] or found
            if len(top) != 1:
                raise BundleError(f"{src}: no bundle.json at the top level or in a single sub-folder")
            spec = json.loads(zf.read(top[0]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{src}: cannot read its bundle.json ({type(e).__name__}: {e})") from None
    validate_spec(spec)
    return spec


def _provenance_options(provenance: Any, spec: dict[str, Any]) -> Any:
    """``score_dataframe``'s ``provenance`` as the options each task passes on: False for a text bundle or when
    off, else a ProvenanceOptions made on the driver (ValueError for an unknown policy, as ``aigc score`` says)."""
    if not provenance or spec["modality"] != "image":
        return False
    from .provenance import ProvenanceOptions, check_policy

    opts = provenance if isinstance(provenance, ProvenanceOptions) else ProvenanceOptions()
    check_policy(opts.policy, "provenance")
    return opts


def _check_arguments(spec: dict[str, Any], threshold: str | float | None, variant: str) -> None:
    """Refuse, before any task runs, a variant the bundle lacks or a threshold it cannot resolve (ValueError
    with the runtime's own message): a caller's typo is no row's error."""
    from ._bundle import refused_note, spec_for_variant
    from ._thresholds import resolve_threshold

    variants = spec["model"]["variants"]
    if variant not in variants:
        raise ValueError(f"variant: no {variant!r} variant in this bundle (it has {sorted(variants)}){refused_note(spec, variant)}")
    if threshold is not None:
        try:
            resolve_threshold(spec_for_variant(spec, variant), threshold)
        except KeyError as e:
            raise ValueError(e.args[0]) from None


def _meta_json(meta: dict[str, Any] | None, modality: str) -> str:
    """``meta`` as ``aigc score`` writes it: every key of the modality present (null where unknown), then the rest."""
    from ._output import uniform_meta

    return json.dumps(uniform_meta(meta, modality), sort_keys=True)


def _error_row(err: str, modality: str) -> dict[str, Any]:
    return {"probability": None, "label": None, "threshold_name": None, "threshold": None, "out_of_support": False,
            "support_reasons": [], "warnings": [], "error": err, "meta": _meta_json(None, modality),
            PROVENANCE_FIELD: None, **dict.fromkeys(PROVENANCE_FLAT)}


def _row(res: Any, modality: str) -> dict[str, Any]:
    from ._output import _json_default, provenance_summary

    d = res.to_dict()
    d["meta"] = _meta_json(d.get("meta"), modality)
    prov = d.get(PROVENANCE_FIELD)
    d[PROVENANCE_FIELD] = None if prov is None else json.dumps(prov, sort_keys=True, default=_json_default)
    if isinstance(prov, dict):
        d["provenance_verdict"], d["provenance_final_label"] = provenance_summary(prov)
    return {k: d[k] for k in (*OUTPUT_FIELDS, PROVENANCE_FIELD, *PROVENANCE_FLAT) if k in d}


def _identity(det: Any) -> dict[str, Any]:
    """What produced a row: the bundle's name, the sha256 of its bundle.json (which holds the sha256 of every
    other file; the identity ``aigc score``'s run record and ``aigc serve`` give) and the variant."""
    return {"bundle_name": det.spec.get("name"), "bundle_sha256": det.bundle.json_sha256, "variant": det.variant}


def _item(v: Any, modality: str) -> tuple[Any, str | None]:
    """A cell -> (item to score, error when the cell cannot be an item)."""
    if v is None or (isinstance(v, float) and v != v):
        return None, "missing value (null)"
    if isinstance(v, (bytes, bytearray, memoryview)):
        if modality == "text":
            return None, "a text bundle needs a string column, found bytes"
        return bytes(v), None
    if isinstance(v, str):
        return v, None
    return None, f"unsupported value of type {type(v).__name__}: expected a path, bytes or a text"


def _group_values(cells: Any, integral: bool) -> list[str | None]:
    """A group column's cells (a pandas Series) as ``aigc score`` reads a group field: ``str(value)``, None for
    a null (None, NaN, pandas' NA). ``integral``: the Spark column has an integer type, which pandas hands over
    as float64 where a batch holds a null (pyspark 3.5); such a cell reads as the integer it was (1.0 -> "1")."""
    import pandas as pd

    out: list[str | None] = []
    for g in cells:
        if pd.api.types.is_scalar(g) and pd.isna(g):
            out.append(None)
        elif integral and isinstance(g, float) and g.is_integer():
            out.append(str(int(g)))
        else:
            out.append(str(g))
    return out


def score_pandas(det: Any, values: list[Any], threshold: str | float | None = None,
                 groups: list[str | None] | None = None, provenance: Any = False) -> list[dict[str, Any]]:
    """Score one batch of cells with a Detector: one output dict per cell (:func:`output_fields`), never raising
    for a bad cell. Used by each Spark task; usable on its own with a pandas column. ``threshold`` None takes
    the bundle's default (``Detector.default_threshold``), as ``aigc score`` and :func:`score_dataframe` do.
    ``provenance`` (True or a ProvenanceOptions; image bundles): each row also gets ``provenance``, as JSON."""
    fields = output_fields(det.modality, provenance)
    prov = provenance if det.modality == "image" else False
    if threshold is None:
        threshold = det.default_threshold
    rows: list[dict[str, Any] | None] = [None] * len(values)
    good: list[int] = []
    items: list[Any] = []
    for i, v in enumerate(values):
        item, err = _item(v, det.modality)
        if err is not None:
            rows[i] = _error_row(err, det.modality)
        else:
            good.append(i)
            items.append(item)
    if items:
        g = [groups[i] for i in good] if groups is not None else None
        try:
            results = det.score(items, threshold=threshold, groups=g, provenance=prov)
        except Exception:  # isolate the row that breaks the batch; the others are still scored
            results = []
            for k, it in enumerate(items):
                try:
                    results.extend(det.score([it], threshold=threshold, groups=None if g is None else [g[k]],
                                             provenance=prov))
                except Exception as e:
                    results.append(None)
                    rows[good[k]] = _error_row(f"cannot score this item ({type(e).__name__}: {e})", det.modality)
        for i, res in zip(good, results, strict=True):
            if res is not None:
                rows[i] = _row(res, det.modality)
    ident = _identity(det)
    out = []
    for r in rows:
        full = {**(r if r is not None else _error_row("not scored", det.modality)), **ident}
        out.append({k: full.get(k) for k in fields})
    return out


def _output_schema(df: Any, prefix: str, fields: list[str]) -> Any:
    from pyspark.sql.types import ArrayType, BooleanType, DoubleType, StringType, StructField, StructType

    types = {"probability": DoubleType(), "label": StringType(), "threshold_name": StringType(),
             "threshold": DoubleType(), "out_of_support": BooleanType(), "support_reasons": ArrayType(StringType()),
             "warnings": ArrayType(StringType()), "error": StringType(), "meta": StringType(),
             PROVENANCE_FIELD: StringType(), **dict.fromkeys(PROVENANCE_FLAT, StringType()), "bundle_name": StringType(), "bundle_sha256": StringType(), "variant": StringType()}
    # Spark resolves column names without regard to case (spark.sql.caseSensitive is false by default), so a
    # column "Label" would clash with the new "label" in any later select.
    new = {(prefix + f).lower() for f in fields}
    clash = sorted(c for c in df.columns if c.lower() in new)
    if clash:
        raise ValueError(f"the DataFrame already has columns {clash}; pass prefix='aigc_' (or another) to score_dataframe")
    return StructType([*df.schema.fields, *(StructField(prefix + f, types[f], True) for f in fields)])


def score_dataframe(
    df: Any,
    bundle: str | os.PathLike[str],
    column: str,
    threshold: str | float | None = None,
    group_column: str | None = None,
    prefix: str = "",
    ship: bool = True,
    threads: int | None = 1,
    batch_size: int = 32,
    variant: str = "fp32",
    workers: int | None = 1,
    providers: str | None = None,
    provenance: Any = True,
) -> Any:
    """Add ``aigc score``'s columns to ``df`` by scoring ``df[column]`` with ``bundle`` (lazily, like any
    Spark transformation: nothing runs until an action such as ``write.parquet``).

    ``ship=True`` sends the bundle (folder or .zip on the driver) with ``SparkContext.addFile``;
    ``ship=False`` means ``bundle`` is a path every executor can read (a shared file system). ``threads``
    and ``workers`` are per Python worker (ONNX Runtime intra-op threads and image decode threads):
    Spark already runs one worker per core, so 1 each is the default. ``group_column`` names a column
    whose value selects the bundle's per-group thresholds. ``prefix`` is put before the new column names.
    ``threshold``: a name in the bundle or a probability; None takes the bundle's default, as ``aigc score``
    does. ``providers``: ONNX Runtime providers on the executors (None: CUDA where present, else CPU).
    ``provenance``: image bundles read each item's provenance and add a ``provenance`` column, as ``aigc score``
    does (True: default options, read on the driver, so ``AIGC_C2PA_TRUST_ANCHORS`` is the driver's; a
    :class:`aigc.provenance.ProvenanceOptions` for a policy or trust anchors; False: no column, like
    ``--no-provenance``). ``bundle`` may be the folder that holds one bundle folder, as for ``aigc score``.
    """
    from pyspark import SparkFiles
    from pyspark.sql.types import IntegralType

    from ._bundle import _find_root

    src = Path(bundle)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such bundle (expected a folder or a .zip)")
    if src.is_dir():
        src = _find_root(src)  # the bundle folder, or the one sub-folder that holds it (as aigc score takes)
    if column not in df.columns:
        raise ValueError(f"column {column!r} is not in the DataFrame (it has {df.columns})")
    if group_column is not None and group_column not in df.columns:
        raise ValueError(f"group_column {group_column!r} is not in the DataFrame (it has {df.columns})")
    spec = _driver_spec(src)
    _check_arguments(spec, threshold, variant)
    prov = _provenance_options(provenance, spec)
    fields = output_fields(spec["modality"], prov)
    schema = _output_schema(df, prefix, fields)
    integral = group_column is not None and isinstance(df.schema[group_column].dataType, IntegralType)
    options = {"threads": threads, "batch_size": batch_size, "variant": variant, "workers": workers,
               "providers": providers}
    if ship:
        shipped = _named_zip(src, bundle_digest(src)) if src.is_file() else _zip_folder(src, bundle_digest(src))
        digest = bundle_digest(shipped)
        df.sparkSession.sparkContext.addFile(str(shipped))
        name, local = shipped.name, None
    else:
        digest = bundle_digest(src)
        name, local = src.name, str(src.resolve())

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        path = local if local is not None else SparkFiles.get(name)
        det = _detector(path, digest, options, shipped=local is None)
        thr = det.default_threshold if threshold is None else threshold
        for pdf in batches:
            groups = None
            if group_column is not None:
                groups = _group_values(pdf[group_column], integral)
            rows = score_pandas(det, pdf[column].tolist(), thr, groups, prov)
            out = pd.DataFrame(rows, columns=fields, index=pdf.index)
            out.columns = [prefix + c for c in fields]
            yield pd.concat([pdf, out], axis=1)

    return df.mapInPandas(run, schema)
