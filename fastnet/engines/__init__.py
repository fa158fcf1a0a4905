"""Choosing an engine.

Each engine is a module exporting the names in ``ENGINE_API``, with the
signatures of the contract (fastnet/engines/contract.py). ``load`` checks
both at import, so an engine that lacks a name, or has drifted from the
contract, fails here and not in a user's script. Asking for an engine that cannot load re-raises the original
error: there is never a silent fallback when a backend was named.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Dict, List, Optional

from . import contract

__all__ = ["ENGINE_API", "BACKENDS", "load", "available_backends", "default_backend"]

#: What every engine exports (see fastnet/engines/_cengine.pyi for the signatures).
ENGINE_API = contract.NAMES

#: Backend name -> module, in order of preference.
BACKENDS = {"cython": "fastnet.engines._cengine", "python": "fastnet.engines.python"}

_loaded: Dict[str, ModuleType] = {}
_default: Optional[str] = None


def load(name: str) -> ModuleType:
    """The engine module for backend ``name``; raises ImportError with the cause."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module = _loaded.get(name)
    if module is None:
        try:
            module = importlib.import_module(BACKENDS[name])
        except ImportError as exc:
            raise ImportError(f"fastnet backend {name!r} cannot be loaded: {exc}") from exc
        problems = contract.check(module)
        if problems:
            raise ImportError(f"fastnet backend {name!r} breaks the engine contract: {'; '.join(problems)}")
        _loaded[name] = module
    return module


def available_backends() -> List[str]:
    """Names of the backends that load on this machine, preferred first."""
    names = []
    for name in BACKENDS:
        try:
            load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def default_backend() -> str:
    """``$FASTNET_BACKEND`` if set (it must load), else the first that loads.

    Decided once, at the first call (``import fastnet`` makes it), so every
    object made without ``backend=`` uses the engine ``fastnet.backend`` names.
    """
    global _default
    if _default is None:
        _default = _choose_default()
    return _default


def _choose_default() -> str:
    requested = os.environ.get("FASTNET_BACKEND", "").strip()
    if requested:
        load(requested)
        return requested
    for name in BACKENDS:
        try:
            load(name)
        except ImportError:
            continue
        return name
    raise ImportError("no fastnet backend can be loaded")  # the python one always can
