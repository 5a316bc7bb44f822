"""Traces that image generators leave in metadata: PNG text chunks, EXIF/XMP software names, A1111 parameters.

A generator trace is an unsigned claim (anyone can write it) but it is written by the tool itself, so its
presence is a declaration of AI generation (``signal="ai"``); its absence means nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._types import Finding, clip

__all__ = ["GENERATOR_CHUNKS", "SOFTWARE_CHUNKS", "a1111_parameters", "creator_tool_signal", "text_findings"]

_AI_TOOLS = re.compile(
    r"\b(stable[ -]?diffusion|novelai|midjourney|dall[-·]?e|comfyui|invokeai|automatic1111|fooocus|"
    r"adobe firefly|leonardo\.ai|ideogram|swarmui|sd\.next|draw things)\b",
    re.IGNORECASE,
)

GENERATOR_CHUNKS: dict[str, str] = {
    "parameters": "AUTOMATIC1111 / Forge / SD.Next generation parameters",
    "prompt": "ComfyUI prompt graph",
    "workflow": "ComfyUI workflow",
    "invokeai_metadata": "InvokeAI metadata",
    "invokeai_graph": "InvokeAI graph",
    "sd-metadata": "InvokeAI (legacy) metadata",
    "Dream": "InvokeAI (legacy) dream command",
    "fooocus_scheme": "Fooocus metadata scheme",
}
"""PNG text keywords that image generators write, and who writes them (shown in README)."""
SOFTWARE_CHUNKS = ("Software", "Source")
"""PNG text keywords that name the software that made the file (NovelAI writes ``Software`` and ``Source``): a
generator named there declares AI. Other keywords (Title, Author, Description, Comment, ...) are free text: a
generator they mention is reported, never counted."""


def creator_tool_signal(value: str) -> tuple[str | None, str | None]:
    """(``"ai"``, note) when a software/creator-tool name names a known image generator, else (None, None)."""
    m = _AI_TOOLS.search(value)
    return ("ai", f"names an image generator ({m.group(1)})") if m else (None, None)


def a1111_parameters(text: str) -> bool:
    """True for the AUTOMATIC1111 'parameters' text (prompt, then a line with Steps:, Sampler:, CFG scale:, Seed:)."""
    return "Steps: " in text and sum(k in text for k in ("Sampler: ", "CFG scale: ", "Seed: ", "Model hash: ", "Size: ")) >= 2


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _comfy_prompt(obj: Any) -> bool:
    return isinstance(obj, dict) and any(isinstance(v, dict) and "class_type" in v for v in list(obj.values())[:200])


def _judge(key: str, text: str) -> tuple[str | None, str | None]:
    """(signal, note) for one text chunk."""
    if key == "parameters":
        if a1111_parameters(text):
            return "ai", GENERATOR_CHUNKS[key]
        obj = _json(text)
        if isinstance(obj, dict) and "sui_image_params" in obj:
            return "ai", "SwarmUI generation parameters"
        if isinstance(obj, dict) and any("fooocus" in str(k).lower() or "fooocus" in str(v).lower() for k, v in list(obj.items())[:100]):
            return "ai", "Fooocus generation parameters"
        return None, "a 'parameters' chunk in no known generator format"
    if key == "prompt":
        return ("ai", GENERATOR_CHUNKS[key]) if _comfy_prompt(_json(text)) else (None, "a 'prompt' chunk in no known generator format")
    if key == "workflow":
        obj = _json(text)
        ok = isinstance(obj, dict) and isinstance(obj.get("nodes"), list)
        return ("ai", GENERATOR_CHUNKS[key]) if ok else (None, "a 'workflow' chunk in no known generator format")
    if key in GENERATOR_CHUNKS:
        return "ai", GENERATOR_CHUNKS[key]
    if key in SOFTWARE_CHUNKS:
        return creator_tool_signal(text)
    m = _AI_TOOLS.search(text)
    if m:  # a title, caption or comment that mentions a generator ("a protest against Midjourney") declares nothing
        return None, f"mentions an image generator ({m.group(1)}) in free text; not a declaration"
    return None, None


def text_findings(chunks: list[tuple[str, str, str]]) -> list[Finding]:
    """Findings of PNG text chunks: known generator chunks and software names. Other chunks (comments,
    titles) are reported only when they mention a generator, without a signal (free text declares nothing),
    so that a caption can neither flood the output nor turn a photo into ``declared_ai``."""
    out: list[Finding] = []
    for where, key, text in chunks:
        try:
            sig, note = _judge(key, text)
        except Exception as e:  # a hostile chunk must not take the item down
            out.append(Finding("png_text", where, key, clip(text, 120), error=f"unreadable ({type(e).__name__})"))
            continue
        if sig is None and note is None and key not in SOFTWARE_CHUNKS:
            continue
        out.append(Finding("png_text", where, key, clip(text), sig, note))
    return out
