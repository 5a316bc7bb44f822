"""Writing report files: the JSON-safe copy of the metrics (``_clean``) and its UTF-8-writable JSON text
(``_json_text``, which keeps a lone surrogate as its escape: ``_LONE``), and the atomic writing of several
files at once (``_atomic_write_all``: all of them or none, with the mode a plain ``open()`` gives:
``_file_mode``).

:func:`aigc.report.render.write_report` renders the three files of a report and writes them with these, as
does the shadow evaluation (:mod:`aigc.report.shadow`); the HTML rendering lives in :mod:`aigc.report.render`,
which re-exports every name here, so ``from aigc.report.render import _atomic_write_all`` keeps working.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_LONE = re.compile("[\ud800-\udfff]")


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars and arrays -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


def _file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give a new file: 0666 less the umask (0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write_all(files: dict[Path, str]) -> None:
    """Write every file to a temporary beside it, then move them all into place: a failure while writing
    (disk full, an unencodable text) replaces none of them."""
    tmps: dict[Path, str] = {}
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            tmps[path] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, _file_mode())  # mkstemp makes 0600; a report is meant to be shared
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps.values():
            Path(tmp).unlink(missing_ok=True)
        raise


def _json_text(m: Any) -> str:
    """``m`` (already ``_clean``) as indented JSON text that can be written as UTF-8, with a final newline."""
    # a lone surrogate (from a "\\ud800" in the data) cannot be written as UTF-8: keep it as its JSON escape
    text = json.dumps(m, indent=1, ensure_ascii=False, allow_nan=False)
    return _LONE.sub(lambda x: f"\\u{ord(x.group()):04x}", text) + "\n"
