"""Every ```python block in README.md and docs/ runs as written, on each engine.

The examples are the first code people copy, so each one must be complete:
it imports what it uses, starts its own peer, stays on loopback and ends by
itself. Each block runs alone in a fresh interpreter (``sys.executable -c``)
with ``FASTNET_BACKEND`` set to the engine under test, and must exit with
status 0. A snippet that is deliberately not runnable (a signature, a
fragment) belongs in a ```text or ```pycon block, which is not run.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

import fastnet

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Fewer blocks than this means the extraction broke, not that the docs shrank.
MIN_BLOCKS = 40

#: Seconds one example may take; each should end in well under a few.
TIMEOUT = 30

# An opening fence: three or more backticks or tildes, then the info string.
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


def markdown_files():
    """README.md and every page of the docs site (not the build output)."""
    pages = [path for path in sorted(DOCS.rglob("*.md")) if "_build" not in path.parts]
    return [ROOT / "README.md", *pages]


def code_blocks(text):
    """``(info, first_line, code)`` for each fenced block in markdown ``text``."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, indent = match["fence"], match["info"], len(match["indent"])
        body = []
        j = i + 1
        # A closing fence: the same character, at least as long, nothing after it.
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        blocks.append((info, i + 1, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def python_examples():
    """A pytest param per ```python block: ``(path, line, code)``, id ``file:index``."""
    params = []
    for path in markdown_files():
        blocks = code_blocks(path.read_text(encoding="utf-8"))
        python = [(line, code) for info, line, code in blocks if info == "python"]
        for index, (line, code) in enumerate(python):
            name = path.relative_to(ROOT).as_posix()
            params.append(pytest.param(path, line, code, id=f"{name}:{index}"))
    return params


EXAMPLES = python_examples()


def test_the_examples_are_found():
    assert len(EXAMPLES) >= MIN_BLOCKS, f"only {len(EXAMPLES)} ```python blocks found in README.md and docs/"
    names = {param.values[0].name for param in EXAMPLES}
    assert "README.md" in names


def test_no_python_block_escapes_the_run():
    """Python under another fence name (```py, ```python3) would silently not be run."""
    for path in markdown_files():
        for info, line, _ in code_blocks(path.read_text(encoding="utf-8")):
            assert info == "python" or info.lower() not in {"python", "py", "python3", "py3"}, (
                f"{path.relative_to(ROOT)}:{line}: use ```python (run) or ```pycon/```text (not run)"
            )


@pytest.mark.parametrize("path,line,code", EXAMPLES)
def test_example_runs(path, line, code, backend, tmp_path):
    where = f"{path.relative_to(ROOT)}:{line}"
    env = dict(os.environ, FASTNET_BACKEND=backend)
    # The interpreter imports the same fastnet this test does, from a neutral
    # directory, so files an example writes stay in tmp_path.
    package_parent = str(pathlib.Path(fastnet.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    # A session of its own, so a peer process an example starts is ended with it.
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"{where}: still running after {TIMEOUT} s on {backend}\n--- stdout\n{stdout}--- stderr\n{stderr}"
        )
    finally:
        try:  # whatever the example left running in its session
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    assert process.returncode == 0, (
        f"{where}: exit status {process.returncode} on {backend}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    )
