"""Reading config text: a strict YAML loader, and YAML values made into field values (``training.config``).

``parse_yaml`` reads YAML as ``yaml.safe_load`` does, except that a key given twice in one mapping is an
error naming both lines, and that unquoted scalars YAML 1.1 turns into booleans, numbers, nulls or dates
(``no``, ``on``, ``0123``, ``2024-01-01``) keep the text as written (``_Plain``). ``_coerce`` converts such
a value to a config field's type: a string field takes the written text, and a number with a leading 0
(octal) or a colon (base 60) is refused as ambiguous. ``read_config_file`` reads a config file's mapping.
The dataclasses, ``--set`` and the merging of keys are in ``training.config``, which re-exports
``ConfigError``, ``parse_yaml`` and ``read_config_file``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml

__all__ = ["ConfigError", "parse_yaml", "read_config_file"]


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it and says what would be right."""


# ------------------------------------------------------------------------------------------------ YAML
@dataclass(frozen=True)
class _Plain:
    """An unquoted YAML scalar that YAML 1.1 reads as a non-string (``no``, ``on``, ``0123``, ``null``,
    ``2024-01-01``): the value YAML gives and the text as written. A string field takes the text."""

    value: Any
    raw: str

    def __str__(self) -> str:
        return self.raw


class _Key(str):
    """A mapping key that remembers its line."""

    line: int | None = None


def _value(v: Any) -> Any:
    return v.value if isinstance(v, _Plain) else v


def _shown(v: Any) -> str:
    return v.raw if isinstance(v, _Plain) else repr(v)


def _line(k: Any) -> str:
    """' (line N)' for a key read from YAML (a ``_Key``), else ''."""
    line = getattr(k, "line", None)
    return f" (line {line})" if line else ""


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, and keeps the written text of plain
    scalars YAML 1.1 turns into booleans, numbers, nulls or dates (as ``_Plain``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                k, line = str(self.construct_object(key_node, deep=True)), key_node.start_mark.line + 1
                if k in seen:
                    raise ConfigError(f"key {k!r} is given twice in one mapping (lines {seen[k]} and {line}); "
                                      "the second would replace the first: merge them into one")
                seen[k] = line
        out: dict[Any, Any] = {}
        for k, v in super().construct_mapping(node, deep=deep).items():
            if type(k) is str:
                k = _Key(k)
                k.line = seen.get(k)
            out[k] = v
        return out


def _keep_text(construct: Any) -> Any:
    def f(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        v = construct(loader, node)
        return _Plain(v, str(node.value)) if node.style is None else v

    return f


for _tag in ("bool", "int", "float", "null", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}",
                            _keep_text(yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))


def parse_yaml(text: str, source: str = "<value>") -> Any:
    """YAML as ``yaml.safe_load`` reads it, except that a key given twice in one mapping is an error and
    unquoted YAML 1.1 non-strings keep their text for string fields; ConfigError names ``source``."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (duplicate keys refused; see ``parse_yaml``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found")
    loaded = parse_yaml(p.read_text(encoding="utf-8"), str(p))
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, found {type(_value(loaded)).__name__}")
    return loaded or {}


# ------------------------------------------------------------------------------------------- coercion
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?(0[0-9_]+|[0-9_]+(:[0-9_]+)+(\.[0-9_]*)?)")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML / command-line value to the field's type, or raise ConfigError naming the key."""
    origin = get_origin(hint)
    if isinstance(value, _Plain):
        if hint is str:  # a string field takes what was written: `no` is "no", `0123` is "0123"
            return "" if value.value is None else value.raw
        if hint in (int, float) and _AMBIGUOUS_NUMBER.fullmatch(value.raw.strip()):
            raise ConfigError(f"{key}: {value.raw} is ambiguous (YAML 1.1 reads a leading 0 as octal and a:b "
                              f"as base 60, giving {value.value!r}); write the number without them")
        if origin is None or value.value is None:
            value = value.value
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            if value is None:
                return ""
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is list:
            (inner,) = get_args(hint)
            if isinstance(value, str):
                value = parse_yaml(value, key) if value.strip().startswith("[") else [v for v in value.split(",") if v]
            if value is None:
                return []
            if not isinstance(value, list):
                value = [value]
            for v in value:
                if inner is str and _value(v) is None:
                    raise ConfigError(f"{key}: a null ({_shown(v) or 'an empty item'}) in a list of strings; "
                                      f"quote it (\"{_shown(v)}\") if it is a value, or remove it")
            return [_coerce(v, inner, key) for v in value]
        if origin is dict:
            kt, vt = get_args(hint)
            if isinstance(value, str):
                value = parse_yaml(value, key)
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise ValueError
            return {_coerce(k, kt, key): _coerce(v, vt, key) for k, v in value.items()}
    except ConfigError:
        raise
    except (ValueError, TypeError):
        pass
    else:
        if origin is None and hint not in (bool, int, float, str):
            return value
    tname = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{key}: found {_shown(value)}, expected {tname}")
