"""Frame specs kept in a file beside an instrument's configuration: TOML or JSON.

A TOML spec has the FrameSpec keywords at the top and each placement field
as a table; a sum of fields is an array of tables, each with its ``scale``::

    payload_offset = 32
    payload_size = 5000
    packets_per_frame = 16

    [counter]
    offset = 4
    size = 4
    byteorder = "little"
    mask = 0xFFFFFF

JSON files hold the same keys (``FrameSpec.to_json`` writes one). TOML needs
Python 3.11's ``tomllib``, or the ``tomli`` backport on 3.10.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from .spec import FrameSpec

__all__ = ["load_spec", "parse_toml"]


def parse_toml(text: str) -> Dict[str, Any]:
    """``text`` parsed as TOML; ImportError naming the fix where no parser is installed."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError(
                "reading a TOML frame spec needs Python 3.11 or the 'tomli' package "
                "(pip install tomli); a JSON spec needs neither"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not a valid TOML frame spec: {exc}") from None


def load_spec(path: "str | os.PathLike[str]") -> FrameSpec:
    """The FrameSpec in ``path``: ``.json`` is read as JSON, anything else as TOML."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if os.fspath(path).endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(path)}: not a valid JSON frame spec: {exc}") from None
    else:
        data = parse_toml(text)
    try:
        return FrameSpec.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{os.fspath(path)}: {exc}") from None
