"""Rows/s through Spark local[2] (aigc.spark.score_dataframe) against `aigc score` on the same items and the
same 2 cores, so the per-row overhead of the Spark door is visible.

    .venv/bin/python bench/bench_spark.py [--images 256] [--texts 4000] [--repeats 2]

Two workloads: JPEG photos (0.3 MP, scikit-image's, quality 90) with a 224-pixel EfficientNet-Lite0
bundle (random weights, exported here: the train extra is needed), where the model dominates; and short
texts with the tests' tiny text bundle, where the per-row overhead dominates. `aigc score` runs as a
command (`--threads 2`: wall time, interpreter start included) and in process (`Detector.score`); Spark
runs 2 Python workers with 1 ORT thread each, writing to the `noop` sink. The first Spark pass includes
starting the workers and loading the bundle (once per worker); later passes reuse both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))


def cli_rate(bundle: Path, inputs: list[str], n: int, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aigc", "score", str(bundle), *inputs, "--out", str(out), "--overwrite",
                    "--no-progress", "--threads", "2"], check=True, capture_output=True, env={**os.environ})
    return n / (time.perf_counter() - t0)


def spark_rates(spark: Any, bundle: Path, df: Any, column: str, n: int, repeats: int) -> list[float]:
    from aigc.spark import score_dataframe

    rates = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        score_dataframe(df, bundle, column, threads=1, workers=1).write.format("noop").mode("overwrite").save()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--texts", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=2, help="warm Spark passes after the first")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from _bundles import build_bundle
    from bench_runtime import export_model, make_bundle, make_jpegs
    from pyspark.sql import SparkSession

    import aigc

    tmp = Path(tempfile.mkdtemp(prefix="aigc-bench-spark-"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("aigc-bench").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    res: dict[str, Any] = {}

    # images: Lite0 at 224, centre crop policy
    onnx_file = export_model("efficientnet_lite0", 224, tmp / "lite0")
    pre = {"type": "image", "size": [224, 224], "resize": "none", "crop": "center", "mean": [0.5] * 3,
           "std": [0.5] * 3, "interpolation": "bicubic", "rgb_rule": "v1"}
    ib = make_bundle(onnx_file, tmp / "lite0" / "bundle", pre)
    paths = [str(p) for p in make_jpegs(tmp / "jpegs", 0.3, args.images)]
    det = aigc.load(ib, threads=2, workers=2)
    det.score(paths[:32], threshold=det.default_threshold)
    t0 = time.perf_counter()
    det.score(paths, threshold=det.default_threshold)
    inproc = len(paths) / (time.perf_counter() - t0)
    cli = cli_rate(ib, [str(tmp / "jpegs")], len(paths), tmp / "img.jsonl")
    df = spark.createDataFrame([(p,) for p in paths], "path STRING").repartition(2).cache()
    df.count()
    sp = spark_rates(spark, ib, df, "path", len(paths), args.repeats)
    res["images"] = {"n": len(paths), "aigc_score_cli": cli, "detector_in_process": inproc, "spark_first": sp[0],
                     "spark_warm": max(sp[1:])}

    # texts: the tiny text bundle (per-row overhead)
    tb = build_bundle(tmp / "text", "text")
    words = ["the", "cat", "sat", "on", "mat", "delve", "tapestry", "moreover", "dog", "ran", "park"]
    texts = [" ".join(words[(i * 7 + k) % len(words)] for k in range(20 + i % 40)) for i in range(args.texts)]
    src = tmp / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    det = aigc.load(tb, threads=2)
    t0 = time.perf_counter()
    det.score(texts, threshold=det.default_threshold)
    inproc = len(texts) / (time.perf_counter() - t0)
    cli = cli_rate(tb, [str(src)], len(texts), tmp / "txt.jsonl")
    df = spark.createDataFrame([(t,) for t in texts], "text STRING").repartition(2).cache()
    df.count()
    sp = spark_rates(spark, tb, df, "text", len(texts), args.repeats)
    res["texts"] = {"n": len(texts), "aigc_score_cli": cli, "detector_in_process": inproc, "spark_first": sp[0],
                    "spark_warm": max(sp[1:])}
    spark.stop()

    print("rows/s on 2 cores: aigc score --threads 2 (command, wall), Detector.score in process, "
          "Spark local[2] first pass and best warm pass")
    print(f"{'workload':10} {'n':>5} {'aigc score':>10} {'in-proc':>8} {'spark 1st':>9} {'spark warm':>10} {'warm/cli':>8}")
    for k, r in res.items():
        print(f"{k:10} {r['n']:5d} {r['aigc_score_cli']:10.1f} {r['detector_in_process']:8.1f} {r['spark_first']:9.1f} "
              f"{r['spark_warm']:10.1f} {r['spark_warm'] / r['aigc_score_cli']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
