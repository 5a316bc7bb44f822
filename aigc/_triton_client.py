"""Score with an aigc bundle whose model runs on Triton Inference Server.

Written by ``aigc export-triton`` beside the model's ``config.pbtxt``. Preprocessing, pooling of text
windows, calibration, thresholds and support checks are ``aigc``'s own (an :class:`aigc.Detector` whose
session sends each model batch to Triton), so the scores equal ``aigc score``'s for the same bundle.

>>> import aigc_triton_client as c
>>> det = c.load("localhost:8000")           # tritonclient[http] talks to Triton
>>> det.score(["a text"], threshold="fpr@1%")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "aigc"
MAX_BATCH_SIZE = 32
HERE = Path(__file__).resolve().parent

_NP_TO_TRITON = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.int64): "INT64",
                 np.dtype(np.int32): "INT32"}  # fmt: skip
_ORT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)", "int32": "tensor(int32)"}


@dataclass
class _Arg:
    name: str
    shape: list[Any]
    type: str


def open_model_bundle(model_dir: str | Path = HERE) -> Any:
    """The bundle laid out in a Triton model folder (bundle.json, tokenizer, 1/model.onnx and its external data),
    their sha256s checked."""
    from aigc._bundle import Bundle, BundleError, load_bundle_spec, sha256_file, text_files

    root = Path(model_dir)
    spec = load_bundle_spec(root, verify_files=False)
    fp32 = spec["model"]["variants"]["fp32"]
    external = list(spec["model"].get("external_data", {}).get("fp32", []))
    needed = [fp32, *external] + (text_files(spec["preprocessing"]) if spec["modality"] == "text" else [])
    for f in needed:
        p = root / "1" / "model.onnx" if f == fp32 else root / "1" / f if f in external else root / f
        if sha256_file(p) != spec["files"][f]:
            raise BundleError(f"files.{f}: {p.name} differs from the bundle's sha256 (file changed or corrupt)")
    return Bundle(root, spec, root)


class TritonSession:
    """The part of ONNX Runtime's InferenceSession that :class:`aigc.Detector` uses, served by Triton."""

    def __init__(self, spec: dict[str, Any], url: str = "localhost:8000", model_name: str = MODEL_NAME, client: Any = None) -> None:
        if client is None:
            import tritonclient.http as httpclient

            client = httpclient.InferenceServerClient(url=url)
        self.client = client
        self.model_name = model_name
        m = spec["model"]
        self._inputs = [_Arg(x["name"], ["batch"] * x["rank"], _ORT_TYPES.get(x.get("dtype", "float32"), "tensor(float)"))
                        for x in m["inputs"]]  # fmt: skip
        self._outputs = [_Arg(x["name"], ["batch"] * x["rank"], "tensor(float)") for x in m["outputs"][:1]]

    def get_inputs(self) -> list[_Arg]:
        return self._inputs

    def get_outputs(self) -> list[_Arg]:
        return self._outputs

    def get_providers(self) -> list[str]:
        return ["TritonInferenceServer"]

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import tritonclient.http as httpclient

        inputs = []
        for name, arr in feeds.items():
            arr = np.ascontiguousarray(arr)
            x = httpclient.InferInput(name, list(arr.shape), _NP_TO_TRITON[arr.dtype])
            x.set_data_from_numpy(arr)
            inputs.append(x)
        outs = [httpclient.InferRequestedOutput(n) for n in output_names]
        res = self.client.infer(self.model_name, inputs, outputs=outs)
        return [res.as_numpy(n) for n in output_names]


def load(url: str = "localhost:8000", model_name: str = MODEL_NAME, session: Any = None, model_dir: str | Path = HERE,
         **detector_kwargs: Any) -> Any:  # fmt: skip
    """An :class:`aigc.Detector` for this model whose model calls go to Triton at ``url`` (or to ``session``,
    any object with ORT's InferenceSession interface). ``batch_size`` defaults to the model's max_batch_size
    and may not exceed it (Triton refuses a larger batch); ``variant`` can only be fp32, the graph Triton
    serves (another variant's calibration and thresholds would be put on fp32's scores). ValueError otherwise."""
    from aigc import Detector

    variant = detector_kwargs.get("variant", "fp32")
    if variant != "fp32":
        raise ValueError(f"variant: Triton serves the fp32 graph (1/model.onnx); {variant!r}'s calibration and "
                         "thresholds would be put on fp32's scores")
    batch_size = detector_kwargs.setdefault("batch_size", MAX_BATCH_SIZE)
    if batch_size > MAX_BATCH_SIZE:
        raise ValueError(f"batch_size: found {batch_size}, expected at most {MAX_BATCH_SIZE} (the model's max_batch_size)")
    bundle = open_model_bundle(model_dir)
    sess = session if session is not None else TritonSession(bundle.spec, url, model_name)
    return Detector(bundle, session=sess, **detector_kwargs)
