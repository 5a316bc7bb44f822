"""Request limits, request parsing and bearer-token auth of ``aigc serve``.

Every refusal is an :class:`ApiError` with a status, a kind (the ``aigc_errors`` metric's label) and a
message that names the limit; none carries a stack trace or a file path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .batching import Item

__all__ = ["ApiError", "ParsedRequest", "check_token", "clean_message", "parse_json", "read_body"]

_PATH_RE = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]?")


class ApiError(Exception):
    """A request the service refuses: HTTP ``status``, error ``kind``, a safe ``message``."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


def clean_message(msg: str) -> str:
    """``msg`` with anything that looks like a file path replaced by ``<path>`` (the service's own routes,
    ``/v1/...``, are kept: error messages name them)."""
    return _PATH_RE.sub(lambda m: m.group(0) if m.group(0).startswith("/v1/") else "<path>", msg)


@dataclass
class ParsedRequest:
    items: list[Item]
    threshold: str | float | None
    item_errors: dict[int, tuple[str, str]] = field(default_factory=dict)
    """index -> (error, sha256 of the item's bytes) for items refused while parsing (a multipart text file
    that is not UTF-8): they fail alone, the others are scored."""


async def read_body(request: Any, max_bytes: int) -> bytes:
    """The request body, refused with 413 beyond ``max_bytes`` (from Content-Length, else while streaming)."""
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if n > max_bytes:
            raise ApiError(413, "body_too_large", f"body of {n} bytes; this service accepts at most {max_bytes} (--max-body-bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"body above {max_bytes} bytes (--max-body-bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's Request.form() reads the cached body
    return body


def _check_count(n: int, max_items: int) -> None:
    if n == 0:
        raise ApiError(422, "no_items", "no items: send {\"items\": [...]} with at least one item")
    if n > max_items:
        raise ApiError(413, "too_many_items", f"{n} items; this service accepts at most {max_items} per request (--max-items)")


def _threshold(v: Any) -> str | float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ApiError(422, "invalid_request", "threshold: expected a name (e.g. \"fpr@1%\") or a probability")
    return v


def _groups(groups: Any, n: int) -> list[str | None]:
    if groups is None:
        return [None] * n
    if not isinstance(groups, list) or len(groups) != n or not all(g is None or isinstance(g, str) for g in groups):
        raise ApiError(422, "invalid_request", f"groups: expected a list of {n} strings or nulls, one per item")
    return groups


def parse_json(body: bytes, max_items: int) -> ParsedRequest:
    """``{"items": [str, ...], "threshold": name|probability, "groups": [str|null, ...]}`` -> ParsedRequest."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "invalid_utf8", f"body is not valid UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(400, "invalid_json", f"body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ApiError(422, "invalid_request", "body: expected a JSON object with an \"items\" list")
    unknown = sorted(set(obj) - {"items", "threshold", "groups"})
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown field(s) {unknown}; expected items, threshold, groups")
    items = obj.get("items")
    if not isinstance(items, list):
        raise ApiError(422, "invalid_request", "items: expected a list of strings (texts, or base64 images)")
    _check_count(len(items), max_items)
    for k, x in enumerate(items):
        if not isinstance(x, str):
            raise ApiError(422, "invalid_request", f"items[{k}]: expected a string, found {type(x).__name__}")
    groups = _groups(obj.get("groups"), len(items))
    return ParsedRequest([Item(x, g) for x, g in zip(items, groups, strict=True)], _threshold(obj.get("threshold")))


async def parse_multipart(request: Any, modality: str, max_items: int, max_bytes: int) -> ParsedRequest:
    """Files under the form field ``items`` (repeated), optional ``threshold`` and ``groups`` fields."""
    from starlette.datastructures import UploadFile

    try:
        form = await request.form(max_files=max_items + 1, max_fields=max_items + 8, max_part_size=max_bytes)
    except Exception as e:  # MultiPartException and the parser's own errors
        raise ApiError(400, "invalid_multipart", f"cannot parse the multipart body ({clean_message(str(e))[:200]})") from None
    unknown = sorted(set(form.keys()) - {"items", "threshold", "groups"})
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s) {unknown}; expected items, threshold, groups")
    raw: list[str | bytes] = []
    bad: dict[int, tuple[str, str]] = {}
    for k, v in enumerate(form.getlist("items")):
        if isinstance(v, UploadFile):
            data = await v.read()
            if modality == "text":
                try:
                    raw.append(data.decode("utf-8"))
                except UnicodeDecodeError as e:  # that item fails, not the request
                    raw.append("")
                    bad[k] = (f"the file is not valid UTF-8 (byte {e.start})", hashlib.sha256(data).hexdigest())
            else:
                raw.append(data)
        else:
            raw.append(v)  # a text, or a base64 image
    _check_count(len(raw), max_items)
    groups_f = form.getlist("groups")
    groups = _groups([str(g) for g in groups_f] if groups_f else None, len(raw))
    thr = form.get("threshold")
    return ParsedRequest([Item(x, g) for x, g in zip(raw, groups, strict=True)], _threshold(thr if isinstance(thr, str) else None), bad)


def check_token(expected: str | None, authorization: str | None) -> None:
    """Raise 401 unless ``authorization`` is ``Bearer <expected>`` (constant-time; one message for every
    way of being wrong: missing header, other scheme, wrong token)."""
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    ok_scheme = scheme.lower() == "bearer"
    ok_token = hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8"))
    if not (ok_scheme and ok_token):
        raise ApiError(401, "unauthorized", "unauthorized", {"WWW-Authenticate": "Bearer"})
