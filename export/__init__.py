"""export: a trained checkpoint -> a calibrated ONNX bundle (see docs/bundle.md).

>>> from export import export_image_model, build_bundle, BuildOptions
"""

from __future__ import annotations

from .bundle_build import MAX_AUROC_DROP, BuildOptions, ExportRefused, build_bundle, item_meta
from .onnx_export import ExportError, export_image_model, export_text_model
from .parity import ParityError, ParityReport, check_parity, torch_raw_scores
from .variants import make_fp16, make_int8, make_variant

__all__ = [
    "MAX_AUROC_DROP",
    "BuildOptions",
    "ExportError",
    "ExportRefused",
    "ParityError",
    "ParityReport",
    "build_bundle",
    "check_parity",
    "export_image_model",
    "export_text_model",
    "item_meta",
    "make_fp16",
    "make_int8",
    "make_variant",
    "torch_raw_scores",
]
