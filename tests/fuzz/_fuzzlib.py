"""What the fuzz targets share: reading choices from the input, temporary files.

A fuzz target is a module ``fuzz_<name>.py`` with ``test_one_input(data: bytes)``:
it returns normally for any input that fastnet handled in a documented way
(a result, or one of the documented exceptions) and raises anything else,
which the runner (and the corpus replay test) reports as a finding.

The targets use :class:`Choices` rather than atheris' FuzzedDataProvider so
that replaying the corpus (tests/test_fuzz_corpus.py) needs no atheris.
"""

from __future__ import annotations

import os
import tempfile


class Choices:
    """Decisions taken from the front of a fuzz input; the rest is payload.

    Every method consumes bytes if there are any and falls back to the
    smallest choice once the input is used up, so every input is valid.
    """

    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        value = self._data[self._pos]
        self._pos += 1
        return value

    def uint(self, nbytes: int) -> int:
        value = 0
        for _ in range(nbytes):
            value = (value << 8) | self.byte()
        return value

    def pick(self, options):
        return options[self.byte() % len(options)]

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def take(self, nbytes: int) -> bytes:
        chunk = self._data[self._pos : self._pos + nbytes]
        self._pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk


class ScratchFile:
    """One temporary file, rewritten for every input (no per-input directory churn)."""

    def __init__(self, suffix: str):
        handle, self.path = tempfile.mkstemp(prefix="fastnet-fuzz-", suffix=suffix)
        os.close(handle)

    def write(self, data: bytes) -> str:
        with open(self.path, "wb") as handle:
            handle.write(data)
        return self.path

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def fuzz_main(test_one_input) -> None:
    """Run ``test_one_input`` under atheris (libFuzzer), with the command line's options.

    libFuzzer starts child processes (``-merge=1``, ``-fork``) by running
    ``argv[0]`` through the shell, so argv[0] becomes "python script".
    """
    import shlex
    import sys

    import atheris

    atheris.instrument_all()
    argv = [f"{shlex.quote(sys.executable)} {shlex.quote(sys.argv[0])}", *sys.argv[1:]]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
