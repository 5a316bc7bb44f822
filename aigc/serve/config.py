"""What ``aigc serve`` is told: bundles, batching, limits, auth, monitoring and shadow settings."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NAME_RE", "ConfigError", "ServeConfig", "bundle_name", "read_token"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """A setting of the service is unusable; the message names the flag."""


@dataclass
class ServeConfig:
    """Every setting of the service, with the defaults of ``aigc serve``'s flags.

    ``bundles``: route name -> bundle path. ``shadow``: primary name -> candidate bundle path.
    Limits: a body above ``max_body_bytes`` is refused (413), as is a request of more than
    ``max_items`` items (413); an image above ``max_image_pixels`` or a text above ``max_text_chars``
    fails as an item (the others are scored). ``max_queue`` items may wait per bundle; beyond that a
    request gets 503 with ``Retry-After``. A request not answered in ``request_timeout_s`` gets 504.
    """

    bundles: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 32
    max_wait_ms: float = 5.0
    batching: bool = True
    max_body_bytes: int = 32 * 1024 * 1024
    max_items: int = 256
    max_image_pixels: int = 40_000_000
    max_text_chars: int = 100_000
    max_queue: int = 2048
    request_timeout_s: float = 30.0
    retry_after_s: int = 1
    token: str | None = None
    threads: int | None = None
    provider: str | None = None
    variant: str = "fp32"
    drift_window: int = 5000
    shadow: dict[str, str] = field(default_factory=dict)
    shadow_queue: int = 1024
    score_log: str | None = None
    score_log_max_bytes: int = 100 * 1024 * 1024
    score_log_backups: int = 5
    log_content: bool = False
    provenance: bool = True  # image items also get the runtime's provenance part (C2PA, IPTC, EXIF, PNG), as aigc score
    weak_groups: str = "warn"  # an item of a group the bundle marks weak: "warn" or "refuse" (Detector.score)

    def check(self) -> None:
        """Raise ConfigError naming the first unusable setting."""
        if not self.bundles:
            raise ConfigError("give at least one bundle")
        for name in [*self.bundles, *self.shadow]:
            if not NAME_RE.fullmatch(name):  # match would let a trailing newline through ($)
                raise ConfigError(f"bundle name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        for name in self.shadow:
            if name not in self.bundles:
                raise ConfigError(f"--shadow {name}=...: no bundle named {name!r} is served (have {sorted(self.bundles)})")
        positive = {"--max-batch": self.max_batch, "--max-body-bytes": self.max_body_bytes, "--max-items": self.max_items,
                    "--max-image-pixels": self.max_image_pixels, "--max-text-chars": self.max_text_chars,
                    "--max-queue": self.max_queue, "--drift-window": self.drift_window, "--shadow-queue": self.shadow_queue}
        for flag, v in positive.items():
            if v < 1:
                raise ConfigError(f"{flag}: found {v}, expected >= 1")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port: found {self.port}, expected 0-65535 (0: a free port, printed at start)")
        if self.max_wait_ms < 0:
            raise ConfigError(f"--max-wait-ms: found {self.max_wait_ms}, expected >= 0")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"--timeout: found {self.request_timeout_s}, expected > 0")
        if self.weak_groups not in ("warn", "refuse"):
            raise ConfigError(f"--weak-groups: found {self.weak_groups!r}, expected warn or refuse")
        if self.max_queue < self.max_items:
            raise ConfigError(f"--max-queue ({self.max_queue}) must hold at least one full request (--max-items {self.max_items})")


def bundle_name(arg: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (NAME, PATH); a bare PATH is named after its folder (or zip) without suffix."""
    if "=" in arg and not Path(arg).exists():
        name, path = arg.split("=", 1)
        return name, path
    p = Path(arg.rstrip("/"))
    return (p.stem if p.suffix == ".zip" else p.name), arg


def read_token(path: str) -> str:
    """The bearer token in ``path`` (surrounding whitespace stripped); ConfigError when unusable."""
    p = Path(path)
    try:
        token = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--token-file: cannot read it ({type(e).__name__})") from None
    if len(token) < 16:
        raise ConfigError("--token-file: the token must have at least 16 characters")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError("--token-file: the token must be one printable word")
    if os.name == "posix" and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        import logging

        logging.getLogger("aigc.serve").warning("--token-file is readable by others than its owner (chmod 600 it)")
    return token
