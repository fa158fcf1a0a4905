"""What a report says about the machine it was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Optional

__all__ = ["describe"]


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as source:
            return int(source.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _compiler_version(compiler) -> Optional[str]:
    """First line of ``cc --version``, e.g. ``gcc (Debian 12.2.0-14) 12.2.0``."""
    try:
        done = subprocess.run(
            [*compiler, "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else None


def describe(compiler=None) -> dict:
    """CPU, cores, kernel, Python, numpy, fastnet and its engines and features.

    ``compiler`` is the command that built the C reference, if it was used.
    """
    import numpy

    import fastnet

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cpus": usable,
        "kernel": platform.release(),
        "os": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "fastnet": fastnet.__version__,
        "backend": fastnet.backend,
        "backends": fastnet.available_backends(),
        "features": fastnet.features(),
        "rmem_max": _read_int("/proc/sys/net/core/rmem_max"),
        "compiler": _compiler_version(compiler) if compiler else None,
    }
