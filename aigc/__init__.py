"""aigc: score images and texts for AI generation with a calibrated ONNX bundle, without torch.

>>> import aigc
>>> det = aigc.load("bundle/")                      # folder or .zip; validated on load
>>> results = det.score(["a.jpg", "b.png"], threshold="fpr@1%")
>>> det.predict_proba(["some text"])                # (n, 2): P(human), P(ai)
"""

from __future__ import annotations

from ._bundle import Bundle, BundleError, open_bundle
from ._detector import Detector, Result, load
from ._image import decode_image, preprocess_image, to_rgb
from ._session import ProviderError

__all__ = [
    "Bundle",
    "BundleError",
    "Detector",
    "ProviderError",
    "Result",
    "decode_image",
    "load",
    "open_bundle",
    "preprocess_image",
    "to_rgb",
]
__version__ = "0.1.0"
