"""aigc: score images and texts for AI generation with a calibrated ONNX bundle, without torch.

>>> import aigc
>>> det = aigc.load("bundle/")
>>> det.score(["a.jpg", "b.png"], threshold="fpr@1%")
"""

from __future__ import annotations

from ._bundle import Bundle, BundleError, open_bundle
from ._image import decode_image, preprocess_image, to_rgb

__all__ = ["Bundle", "BundleError", "decode_image", "open_bundle", "preprocess_image", "to_rgb"]
__version__ = "0.1.0"
