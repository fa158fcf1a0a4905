"""The C reference peer: compiled on first use from reference.c, kept in a cache.

The source ships inside the package (so ``fastnet bench`` works from any
install) and is compiled with the system C compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``) at ``-O2``. The binary is cached under
``$XDG_CACHE_HOME/fastnet`` (``~/.cache/fastnet``), keyed by the source and the
compiler, so later runs start at once. Without a compiler the reference rows
are skipped with that reason.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["SOURCE", "build", "find_compiler"]

SOURCE = Path(__file__).with_name("reference.c")
COMPILE_TIMEOUT_S = 120


def find_compiler() -> Optional[List[str]]:
    """The C compiler command to use, or None."""
    chosen = os.environ.get("CC", "").strip()
    if chosen:
        command = shlex.split(chosen)
        return command if shutil.which(command[0]) else None
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def _cache_dirs() -> List[Path]:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(base) / "fastnet", Path(tempfile.gettempdir()) / f"fastnet-{os.getuid()}"]


def _key(source: bytes, compiler: List[str]) -> str:
    digest = hashlib.sha256(source)
    for part in compiler:
        digest.update(b"\0" + part.encode())
    resolved = shutil.which(compiler[0]) or compiler[0]
    try:
        digest.update(str(os.stat(resolved).st_mtime_ns).encode())
    except OSError:
        pass
    return digest.hexdigest()[:16]


def build() -> Tuple[Optional[Path], Optional[str]]:
    """``(path to the binary, None)``, or ``(None, why it cannot be built)``."""
    compiler = find_compiler()
    if compiler is None:
        return None, "no C compiler found ($CC, cc, gcc, clang)"
    try:
        source = SOURCE.read_bytes()
    except OSError as exc:
        return None, f"cannot read {SOURCE}: {exc.strerror}"
    name = f"bench-reference-{_key(source, compiler)}"
    last_error = "no writable cache directory"
    for directory in _cache_dirs():
        binary = directory / name
        if os.access(binary, os.X_OK):
            return binary, None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=name, dir=directory)
            os.close(fd)
        except OSError as exc:
            last_error = f"cannot write to {directory}: {exc.strerror}"
            continue
        try:
            done = subprocess.run(
                [*compiler, "-O2", "-o", partial, str(SOURCE)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
            )
            if done.returncode != 0:
                lines = [line for line in done.stderr.splitlines() if line.strip()]
                detail = lines[-1] if lines else f"exit status {done.returncode}"
                return None, f"{' '.join(compiler)} failed on reference.c: {detail}"
            os.chmod(partial, 0o755)
            os.replace(partial, binary)  # atomic: a parallel run sees all or nothing
            return binary, None
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(compiler)} took over {COMPILE_TIMEOUT_S} s on reference.c"
        except OSError as exc:
            return None, f"cannot run {' '.join(compiler)}: {exc.strerror}"
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return None, last_error
