"""aigc.spark on local[2] against `aigc score` on the same items: same probabilities, same errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install '.[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime (make jdk installs openjdk-17-jre-headless)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (SparkSession.builder.master("local[2]").appName("aigc-test")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _images(folder: Path) -> list[str]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(9):
        arr = rng.integers(0, 255, (40 + 7 * i, 50 + 5 * i, 3), dtype=np.uint8)
        p = folder / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    (folder / "notimage.jpg").write_bytes(b"hello, not a jpeg")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[:300])
    (folder / "empty.png").write_bytes(b"")
    return [*paths, str(folder / "notimage.jpg"), str(folder / "truncated.jpg"), str(folder / "empty.png")]


def _cli(bundle: Path, inputs: list[str], out: Path) -> dict[str, dict[str, Any]]:
    subprocess.run([sys.executable, "-m", "aigc", "score", str(bundle), *inputs, "--out", str(out), "--no-progress",
                    "--threads", "1"], check=True, capture_output=True, timeout=120, env={**os.environ})
    return {r["item"]: r for r in map(json.loads, out.read_text().splitlines())}


def _same(spark_row: dict[str, Any], cli_row: dict[str, Any]) -> None:
    if cli_row["probability"] is None:
        assert spark_row["probability"] is None
    else:
        assert abs(spark_row["probability"] - cli_row["probability"]) <= 1e-6
    for k in ("label", "threshold_name", "threshold", "out_of_support", "error"):
        assert spark_row[k] == cli_row[k], k
    assert list(spark_row["support_reasons"] or []) == cli_row["support_reasons"]
    assert json.loads(spark_row["meta"]) == cli_row["meta"]  # failed rows too: every key, null where unknown


def test_image_paths_and_bytes_match_aigc_score(spark: Any, tiny_image_bundle: Path, tmp_path: Path) -> None:
    from aigc.spark import score_dataframe

    paths = _images(tmp_path / "imgs")
    cli = _cli(tiny_image_bundle, paths, tmp_path / "cli.jsonl")
    missing = str(tmp_path / "imgs" / "missing.jpg")
    df = spark.createDataFrame([(i, p) for i, p in enumerate([*paths, missing, None])], "id INT, path STRING")
    rows = {r["id"]: r.asDict() for r in score_dataframe(df, tiny_image_bundle, "path").collect()}
    assert len(rows) == len(paths) + 2
    for i, p in enumerate(paths):
        _same(rows[i], cli[p])
    assert sum(rows[i]["error"] is None for i in range(len(paths))) == 9
    assert sum(rows[i]["error"] is not None for i in range(len(paths))) == 3  # bad rows: errors, not a failed task
    assert "no such file" in rows[len(paths)]["error"]
    assert rows[len(paths) + 1]["error"] == "missing value (null)"
    assert json.loads(rows[0]["meta"])["width"] == 50

    # bytes (a binary column) score like the files they came from; the bundle ships as a .zip this time
    zipped = shutil.make_archive(str(tmp_path / "tiny"), "zip", tiny_image_bundle)
    dfb = spark.createDataFrame([(p, Path(p).read_bytes()) for p in paths], "path STRING, data BINARY")
    got = {r["path"]: r.asDict() for r in score_dataframe(dfb, zipped, "data", prefix="aigc_", threshold=0.5).collect()}
    for p in paths:
        r = {k[5:]: v for k, v in got[p].items() if k.startswith("aigc_")}
        if cli[p]["error"] is None:
            assert abs(r["probability"] - cli[p]["probability"]) <= 1e-6 and r["threshold"] == 0.5
        else:
            assert r["error"] == cli[p]["error"]


def test_texts_match_aigc_score(spark: Any, tiny_text_bundle: Path, tmp_path: Path) -> None:
    from aigc.spark import score_dataframe

    texts = ["the cat sat on the mat", "moreover the tapestry delve furthermore", "", "   ",
             "a dog ran in the park " * 30, "delve", "\u200b\u200b"]
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cli = _cli(tiny_text_bundle, [str(src)], tmp_path / "cli.jsonl")
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id INT, text STRING").repartition(2)
    rows = {r["id"]: r.asDict() for r in score_dataframe(df, tiny_text_bundle, "text").collect()}
    for i in range(len(texts)):
        _same(rows[i], cli[f"{src}:{i + 1}"])
    assert rows[2]["error"] is not None and rows[0]["error"] is None


def test_bundle_is_loaded_once_per_process_and_checked(tiny_image_bundle: Path, tmp_path: Path) -> None:
    from aigc import spark as aspark

    digest = aspark.bundle_digest(tiny_image_bundle)
    a = aspark._detector(str(tiny_image_bundle), digest, {"threads": 1})
    assert aspark._detector(str(tiny_image_bundle), digest, {"threads": 1}) is a
    with pytest.raises(RuntimeError, match="sha256"):
        aspark._detector(str(tiny_image_bundle), "0" * 64, {"threads": 1})
    rows = aspark.score_pandas(a, [None, 3, "/no/such.png"])
    assert [r["error"] is not None for r in rows] == [True, True, True]
    assert rows[1]["error"].startswith("unsupported value of type int")


def test_one_detector_per_worker_process_across_batches(spark: Any, tiny_text_bundle: Path) -> None:
    """In Spark's Python workers, every Arrow batch of every task gets the process's one cached Detector."""
    from aigc import spark as aspark

    path, digest = str(tiny_text_bundle), aspark.bundle_digest(tiny_text_bundle)

    def probe(batches: Any) -> Any:
        import pandas as pd

        for pdf in batches:
            det = aspark._detector(path, digest, {"threads": 1})
            yield pd.DataFrame({"pid": [os.getpid()] * len(pdf), "det": [id(det)] * len(pdf)})

    df = spark.range(40).repartition(4)  # 4 tasks, batches of 4 rows: 10 batches over 2 workers
    rows = df.mapInPandas(probe, "pid LONG, det LONG").collect()
    by_pid: dict[int, set[int]] = {}
    for r in rows:
        by_pid.setdefault(r["pid"], set()).add(r["det"])
    assert len(rows) == 40 and 1 <= len(by_pid) <= 2
    assert all(len(d) == 1 for d in by_pid.values())


def test_bad_threshold_or_variant_is_refused_on_the_driver(spark: Any, tiny_text_bundle: Path, tmp_path: Path) -> None:
    """A typo in the threshold or variant is the caller's, not a row's: refused when the plan is made, with the
    runtime's own message, instead of a finished job whose every row carries the same error."""
    from aigc.spark import score_dataframe

    df = spark.createDataFrame([(0, "the cat sat")], "id INT, text STRING")
    zipped = shutil.make_archive(str(tmp_path / "tiny-text"), "zip", tiny_text_bundle)
    for bundle in (tiny_text_bundle, zipped):
        with pytest.raises(ValueError, match=r"'fpr@5' is not in this bundle.*did you mean 'fpr@5%'"):
            score_dataframe(df, bundle, "text", threshold="fpr@5")
        with pytest.raises(ValueError, match=r"found 1.5, expected a probability"):
            score_dataframe(df, bundle, "text", threshold=1.5)
        with pytest.raises(ValueError, match=r"no 'int4' variant"):
            score_dataframe(df, bundle, "text", variant="int4")
    assert score_dataframe(df, zipped, "text", threshold="0.5").collect()[0]["threshold_name"] == "p>=0.5"


def test_two_bundles_of_one_file_name_both_ship(spark: Any, tiny_text_bundle: Path, tmp_path: Path) -> None:
    """Spark's files are named by their base name alone: a second bundle.zip (another folder, or the same path
    rewritten by a new export) in one session made Spark fail the job ("exists and does not match contents").
    Each is shipped under a name that carries its digest, so each job scores with its own bundle."""
    pytest.importorskip("onnx")
    from _bundles import THRESHOLDS, build_bundle

    from aigc.spark import score_dataframe

    other = build_bundle(tmp_path / "other", "text", {"thresholds": {**THRESHOLDS, "fpr@1%": {**THRESHOLDS["fpr@1%"], "value": 0.3}}})
    a = Path(shutil.make_archive(str(tmp_path / "a" / "bundle"), "zip", tiny_text_bundle))
    b = Path(shutil.make_archive(str(tmp_path / "b" / "bundle"), "zip", other))
    df = spark.createDataFrame([(0, "the cat sat")], "id INT, text STRING")
    assert score_dataframe(df, a, "text").collect()[0]["threshold"] == 0.8
    assert score_dataframe(df, b, "text").collect()[0]["threshold"] == 0.3
    shutil.copyfile(b, a)  # a new export over the old file
    assert score_dataframe(df, a, "text").collect()[0]["threshold"] == 0.3


def test_each_row_names_the_bundle_and_variant_that_scored_it(spark: Any, tiny_text_bundle: Path) -> None:
    """A scored table outlives the job: every row, failed ones too, carries the bundle's name, the sha256 of its
    bundle.json (as aigc score's run record and aigc serve give it) and the variant."""
    from aigc._bundle import sha256_file
    from aigc.spark import score_dataframe

    df = spark.createDataFrame([(0, "the cat sat"), (1, None)], "id INT, text STRING")
    out = score_dataframe(df, tiny_text_bundle, "text", prefix="aigc_")
    assert out.columns[-3:] == ["aigc_bundle_name", "aigc_bundle_sha256", "aigc_variant"]
    rows = {r["id"]: r for r in out.collect()}
    for r in rows.values():
        assert (r["aigc_bundle_name"], r["aigc_variant"]) == ("tiny-text", "fp32")
        assert r["aigc_bundle_sha256"] == sha256_file(tiny_text_bundle / "bundle.json")
    assert rows[0]["aigc_error"] is None and rows[1]["aigc_error"] == "missing value (null)"


def test_group_cells_read_as_aigc_score_reads_a_group_field() -> None:
    """pandas hands an integer column that holds nulls over as float64 (pyspark 3.5: 1 -> 1.0) or as a nullable
    Int32 with <NA> (pyspark 4): the cells had become '1.0' and '<NA>', so group '1' silently fell back to the
    bundle's global threshold. An integer column reads as the integers it holds, a null as no group."""
    import pandas as pd

    from aigc.spark import _group_values

    assert _group_values(pd.Series([1.0, np.nan, 2.0]), integral=True) == ["1", None, "2"]
    assert _group_values(pd.Series(pd.array([1, None], dtype="Int32")), integral=True) == ["1", None]
    assert _group_values(pd.Series([1.5, None, "en"], dtype=object), integral=False) == ["1.5", None, "en"]
    assert _group_values(pd.Series(["en", None], dtype="str"), integral=False) == ["en", None]


def test_score_pandas_takes_the_bundle_default_threshold(tmp_path: Path) -> None:
    """score_pandas on its own defaulted to 'fpr@1%': on a bundle without that threshold every row failed with
    the same KeyError. Without a threshold it now takes the bundle's default, as aigc score does."""
    from _bundles import THRESHOLDS, build_bundle

    import aigc
    from aigc.spark import score_pandas

    only5 = {"thresholds": {"fpr@5%": THRESHOLDS["fpr@5%"]}}
    det = aigc.load(build_bundle(tmp_path / "b", "text", only5))
    rows = score_pandas(det, ["the cat sat", None])
    assert rows[0]["error"] is None and rows[0]["threshold_name"] == "fpr@5%"
    assert rows[1]["error"] == "missing value (null)"


def test_output_columns_clash_without_regard_to_case(spark: Any, tiny_text_bundle: Path) -> None:
    """Spark resolves column names without regard to case by default: a column 'Label' beside the new 'label'
    made every later select of either ambiguous; it is refused when the plan is made, as 'label' is."""
    from aigc.spark import score_dataframe

    df = spark.createDataFrame([(0, "the cat sat", "x")], "id INT, text STRING, Label STRING")
    with pytest.raises(ValueError, match="Label"):
        score_dataframe(df, tiny_text_bundle, "text")
    assert "aigc_label" in score_dataframe(df, tiny_text_bundle, "text", prefix="aigc_").columns


def _nested_text_bundle(src: Path, dest: Path) -> Path:
    """A copy of the tiny text bundle whose tokenizer sits in a sub-folder (``tok/tokenizer.json``, listed as
    such in bundle.json), with stray files beside it that are no part of the bundle."""
    from aigc._bundle import sha256_file

    shutil.copytree(src, dest)
    (dest / "tok").mkdir()
    os.replace(dest / "tokenizer.json", dest / "tok" / "tokenizer.json")
    spec = json.loads((dest / "bundle.json").read_text())
    spec["preprocessing"]["tokenizer"] = "tok/tokenizer.json"
    spec["files"] = {("tok/tokenizer.json" if k == "tokenizer.json" else k): v for k, v in spec["files"].items()}
    (dest / "bundle.json").write_text(json.dumps(spec))
    (dest / "notes.txt").write_text("my notes")
    (dest / ".DS_Store").write_bytes(b"\0" * 16)
    (dest / "checkpoint.pt").write_bytes(b"\1" * 4096)
    (dest / "scratch").mkdir()
    (dest / "scratch" / "old.onnx").write_bytes(b"old")
    assert sha256_file(dest / "tok" / "tokenizer.json") == spec["files"]["tok/tokenizer.json"]
    return dest


def test_bundle_digest_of_no_bundle_says_what_is_wrong(tiny_text_bundle: Path, tmp_path: Path) -> None:
    """bundle_digest of the folder above a bundle (bundle.json one level down) raised a bare FileNotFoundError
    from the hash function. It names the path, says it has no bundle.json at its top, and names the one
    sub-folder that holds a bundle as the likely path; a missing path and a file that is no zip likewise."""
    from aigc._bundle import BundleError
    from aigc.spark import bundle_digest

    parent = tmp_path / "parent"
    shutil.copytree(tiny_text_bundle, parent / "mybundle")
    (parent / "other").mkdir()
    with pytest.raises(BundleError, match=r"no bundle\.json at its top") as e:
        bundle_digest(parent)
    assert str(parent) in str(e.value) and str(parent / "mybundle") in str(e.value)
    assert bundle_digest(parent / "mybundle") == bundle_digest(tiny_text_bundle)
    with pytest.raises(ValueError, match="no such bundle") as e:
        bundle_digest(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)
    notzip = tmp_path / "bundle.zip"
    notzip.write_text("not a zip")
    with pytest.raises(ValueError, match=r"not a bundle.*\.zip") as e:
        bundle_digest(notzip)
    assert str(notzip) in str(e.value)
    shutil.copytree(tiny_text_bundle, parent / "second")
    with pytest.raises(ValueError, match=r"2 sub-folders hold one \(mybundle, second\)"):
        bundle_digest(parent)


def test_folder_ships_exactly_the_bundle_files(spark: Any, tiny_text_bundle: Path, tmp_path: Path) -> None:
    """A folder was zipped as every top-level file: notes, a checkpoint or a .DS_Store left beside the bundle
    went to every executor, and a listed file in a sub-folder was dropped (the bundle then failed to open on
    the executors). The zip holds bundle.json and the files it lists, at their paths, and nothing else."""
    import zipfile

    import aigc
    from aigc._bundle import BundleError
    from aigc.spark import _zip_folder, bundle_digest, score_dataframe

    b = _nested_text_bundle(tiny_text_bundle, tmp_path / "parent" / "nested")
    spec = json.loads((b / "bundle.json").read_text())
    z = _zip_folder(b, bundle_digest(b))
    assert z.name.startswith("nested-") and _zip_folder(b, bundle_digest(b)) == z  # once per process
    with zipfile.ZipFile(z) as zf:
        names = sorted(zf.namelist())
    assert names == ["bundle.json", "model.onnx", "tok/tokenizer.json"]
    text = "the cat sat on the mat"
    want = aigc.load(b).score([text])[0].probability
    assert aigc.load(z).score([text])[0].probability == pytest.approx(want, abs=1e-9)
    # the folder above the bundle scores as aigc score takes it; the job ships the same files
    df = spark.createDataFrame([(0, text)], "id INT, text STRING")
    assert score_dataframe(df, tmp_path / "parent", "text").collect()[0]["probability"] == pytest.approx(want, abs=1e-6)

    from aigc.spark import bundle_file_names

    assert sorted(bundle_file_names(spec)) == names
    (b / "model.onnx").unlink()  # a listed file missing: named, on the driver
    with pytest.raises(BundleError, match=r"files\.model\.onnx: listed in bundle\.json but missing"):
        _zip_folder(b, "f" * 64)


def test_image_rows_carry_provenance_as_aigc_score_rows_do(spark: Any, tiny_image_bundle: Path, tmp_path: Path) -> None:
    """aigc score's rows for an image bundle carry a provenance part (C2PA/XMP/EXIF/PNG evidence and the policy's
    final label); Spark's rows had none. They carry it as JSON, equal to aigc score's, from paths and bytes;
    provenance=False (like --no-provenance) leaves the column out, and text bundles never have it."""
    from _provenance_fixtures import png_with_text

    from aigc.spark import PROVENANCE_FLAT, score_dataframe

    folder = tmp_path / "imgs"
    paths = _images(folder)[:2]
    gen = folder / "generated.png"
    gen.write_bytes(png_with_text({"parameters": "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1"}))
    paths.append(str(gen))
    cli = _cli(tiny_image_bundle, paths, tmp_path / "cli.jsonl")
    assert cli[str(gen)]["provenance"]["verdict"] != cli[paths[0]]["provenance"]["verdict"]
    df = spark.createDataFrame([*((p, Path(p).read_bytes()) for p in paths), (None, None)], "path STRING, data BINARY")
    out = score_dataframe(df, tiny_image_bundle, "path")
    assert out.columns[-6:] == ["provenance", "provenance_verdict", "provenance_final_label", "bundle_name",
                                "bundle_sha256", "variant"]
    for col in ("path", "data"):
        rows = {r["path"]: r for r in score_dataframe(df, tiny_image_bundle, col).collect()}
        for p in paths:
            assert json.loads(rows[p]["provenance"]) == cli[p]["provenance"], (col, p)
            # the derived columns are the CSV's provenance.verdict and provenance.final_label
            assert rows[p]["provenance_verdict"] == cli[p]["provenance"]["verdict"], (col, p)
            assert rows[p]["provenance_final_label"] == cli[p]["provenance"]["decision"]["label"], (col, p)
        assert rows[str(gen)]["provenance_verdict"] != rows[paths[0]]["provenance_verdict"]
        assert rows[None]["provenance"] is None and rows[None]["error"] == "missing value (null)"
        assert rows[None]["provenance_verdict"] is None and rows[None]["provenance_final_label"] is None
    no_prov = score_dataframe(df, tiny_image_bundle, "path", provenance=False).columns
    assert not {"provenance", *PROVENANCE_FLAT} & set(no_prov)
    with pytest.raises(ValueError, match="policy 'nope' is unknown"):
        from aigc.provenance import ProvenanceOptions

        score_dataframe(df, tiny_image_bundle, "path", provenance=ProvenanceOptions(policy="nope"))


def _bundle_dirs() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("aigc-bundle-*")}


def test_shipped_zip_is_extracted_once_per_node_and_leaves_no_temporary_copy(
        spark: Any, tiny_text_bundle: Path, tmp_path: Path) -> None:
    """Spark ends its Python workers without running their exit handlers: a zip each worker extracted to a
    temporary folder of its own stayed behind (14 copies per run of this file). The shipped zip is extracted
    once, into Spark's files folder, and nothing is left under the temporary folder."""
    from aigc.spark import bundle_digest, score_dataframe

    zipped = shutil.make_archive(str(tmp_path / "tiny-text-once"), "zip", tiny_text_bundle)
    before = _bundle_dirs()
    df = spark.createDataFrame([(f"text number {i} about things",) for i in range(12)], "text STRING").repartition(4)
    out = score_dataframe(df, zipped, "text").collect()
    assert len(out) == 12 and all(r["probability"] is not None for r in out)
    assert _bundle_dirs() - before == set()

    def where(batches: Any) -> Any:
        import pandas as pd
        from pyspark import SparkFiles

        for pdf in batches:
            root = Path(SparkFiles.getRootDirectory())
            yield pd.DataFrame({"dirs": [",".join(sorted(p.name for p in root.iterdir() if p.is_dir()))] * len(pdf)})

    seen = {r["dirs"] for r in spark.range(4).repartition(2).mapInPandas(where, "dirs STRING").collect()}
    dirs = {d for s in seen for d in s.split(",")}
    assert f"aigc-bundle-{bundle_digest(zipped)[:16]}" in dirs, seen  # one folder, named by the zip's sha256
    assert not [d for d in dirs if d.startswith(".aigc-bundle-")], seen  # no half-written copy left


def test_unshipped_zip_is_extracted_once_under_the_node_cache(tiny_text_bundle: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ship=False: the zip is the user's file on a shared path; it is extracted under the temporary folder's
    aigc-spark-bundles (never beside the user's file), once, and reused by a second load."""
    import tempfile

    from aigc import spark as aspark

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    user = tmp_path / "user"
    user.mkdir()
    zipped = Path(shutil.make_archive(str(user / "bundle"), "zip", tiny_text_bundle))
    digest = aspark.bundle_digest(zipped)
    det = aspark._detector(str(zipped), digest, {"threads": 1, "batch_size": 3})
    assert sorted(p.name for p in user.iterdir()) == ["bundle.zip"]
    cache = tmp / aspark.NODE_CACHE
    assert [p.name for p in cache.iterdir()] == [f"aigc-bundle-{digest[:16]}"]
    assert not list(tmp.glob("aigc-bundle-*"))
    first = (cache / f"aigc-bundle-{digest[:16]}" / "bundle.json").stat().st_mtime_ns
    assert aspark._extracted(zipped, digest) == cache / f"aigc-bundle-{digest[:16]}"
    assert (cache / f"aigc-bundle-{digest[:16]}" / "bundle.json").stat().st_mtime_ns == first  # reused, not rewritten
    assert det.score(["some words to score here"])[0].probability is not None
    planted = cache / f"aigc-bundle-{digest[:16]}" / "bundle.json"  # a folder of that name holding another bundle
    planted.write_text(planted.read_text().replace('"name"', '"name" ', 1))
    with pytest.raises(RuntimeError, match="not the one in"):
        aspark._extracted(zipped, digest)


def test_a_corrupt_zip_leaves_no_partial_folder(tmp_path: Path) -> None:
    from aigc import spark as aspark
    from aigc._bundle import BundleError

    bad = tmp_path / "files" / "bad.zip"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(BundleError, match="bad.zip"):
        aspark._extracted(bad, "ab" * 32, bad.parent)
    assert sorted(p.name for p in bad.parent.iterdir()) == ["bad.zip"]


def test_the_driver_removes_its_zipped_copy_at_exit(tiny_text_bundle: Path) -> None:
    code = ("import sys; from pathlib import Path; from aigc import spark as s; "
            "p = s._zip_folder(Path(sys.argv[1]), s.bundle_digest(sys.argv[1])); print(p); assert p.is_file()")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_text_bundle)], capture_output=True, text=True,
                          timeout=120, check=True)
    made = Path(done.stdout.strip())
    assert made.name.endswith(".zip") and not made.parent.exists()


def test_a_broken_folder_in_the_cache_is_named_not_used(tiny_text_bundle: Path, tmp_path: Path) -> None:
    """A folder of the digest's name without the zip's bundle.json (emptied, or half copied by hand) is refused,
    naming it, before any extraction."""
    from aigc import spark as aspark

    zipped = Path(shutil.make_archive(str(tmp_path / "files" / "bundle"), "zip", tiny_text_bundle))
    digest = aspark.bundle_digest(zipped)
    (zipped.parent / f"aigc-bundle-{digest[:16]}").mkdir()
    with pytest.raises(RuntimeError, match=f"aigc-bundle-{digest[:16]}"):
        aspark._extracted(zipped, digest, zipped.parent)
    assert not list(zipped.parent.glob(".aigc-bundle-*"))
