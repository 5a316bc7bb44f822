"""aigc: score images and texts for AI generation with a calibrated ONNX bundle, without torch.

>>> import aigc
>>> det = aigc.load("bundle/")                      # folder or .zip; validated on load
>>> results = det.score(["a.jpg", "b.png"], threshold="fpr@1%")
>>> det.predict_proba(["some text"])                # (n, 2): P(human), P(ai)
"""

from __future__ import annotations

from ._bundle import Bundle, BundleError, open_bundle
from ._detector import Detector, Result, load
from ._image import decode_image, image_from_array, preprocess_image, to_rgb
from ._output import read_scores
from ._session import ProviderError

__all__ = [
    "Bundle",
    "BundleError",
    "Detector",
    "ProviderError",
    "Result",
    "decode_image",
    "image_from_array",
    "load",
    "open_bundle",
    "preprocess_image",
    "read_scores",
    "to_rgb",
]
__version__ = "0.1.0"
