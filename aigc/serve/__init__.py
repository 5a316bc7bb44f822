"""``aigc serve``: the detector as an HTTP service (FastAPI on uvicorn), with dynamic batching, limits,
optional bearer-token auth, Prometheus metrics, drift monitoring and shadow comparison.

Needs the ``serve`` extra (``pip install 'aigc-sentinel[serve]'``). Nothing here is imported by ``import aigc``;
the modules that need fastapi import it themselves. Every score comes from :class:`aigc.Detector`:
the service never re-implements preprocessing, calibration or thresholds.

>>> from aigc.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(bundles={"text": "bundles/text"}))   # an ASGI app for any ASGI server
"""

from __future__ import annotations

from typing import Any

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(config: ServeConfig) -> Any:
    """The FastAPI application for ``config`` (bundles load at startup, in the app's lifespan)."""
    from .app import create_app as _create

    return _create(config)
