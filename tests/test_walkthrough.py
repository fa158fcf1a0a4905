"""The record-and-replay walk-through of docs/guide/capture.md, run command by command as written.

Each ``$`` line of the section's console blocks runs as given (``fastnet`` is
the command the install put beside this Python). A command marked
``# terminal 1`` is a receiver: it is started in the background and waited
for until it is bound; the others run to the end. Every command must exit 0,
and the outputs must say what the page says they say.
"""

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from cli_helpers import bound_address
from test_examples import code_blocks

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "guide" / "capture.md"
TIMEOUT = 60


def walkthrough_commands():
    """``(line, argv, background)`` for each ``$`` line of the walk-through section."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## Walk-through")
    end = text.index("\n## ", start + 1)
    commands = []
    for info, _, code in code_blocks(text[start:end]):
        if info != "console":
            continue
        for line in code.splitlines():
            if line.startswith("$ "):
                background = re.search(r"#\s*terminal 1\b", line) is not None
                commands.append((line[2:], shlex.split(line[2:], comments=True), background))
    return commands


def _executable(argv):
    if argv[0] != "fastnet":
        return argv
    script = pathlib.Path(sys.executable).with_name("fastnet")
    return [str(script), *argv[1:]] if script.exists() else [sys.executable, "-m", "fastnet", *argv[1:]]


def test_the_page_has_the_walkthrough():
    commands = walkthrough_commands()
    assert [argv[:2] for _, argv, _ in commands] == [
        ["fastnet", "recv"],
        ["fastnet", "send"],
        ["tshark", "-r"],
        ["tshark", "-r"],
        ["fastnet", "recv"],
        ["fastnet", "send"],
    ]
    assert [background for _, _, background in commands] == [True, False, False, False, True, False]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_record_look_replay_as_written(backend, tmp_path):
    env = dict(os.environ, FASTNET_BACKEND=backend)
    outputs = []
    receiver = None
    for line, argv, background in walkthrough_commands():
        if background:
            receiver = subprocess.Popen(
                _executable(argv), cwd=tmp_path, env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            bound_address(receiver, TIMEOUT)  # its first line: 'receiving on HOST:PORT'
            continue
        done = subprocess.run(
            _executable(argv), cwd=tmp_path, env=env, text=True, capture_output=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
        if receiver is not None:  # the sender has finished: the receiver has its count
            try:
                out, err = receiver.communicate(timeout=TIMEOUT)
            finally:
                receiver.kill()
            assert receiver.returncode == 0, f"{out}\n{err}"
            outputs.append(out)
            receiver = None
    sent, recorded, first_lines, io_stat, resent, replayed = outputs
    assert "received 1,000 datagrams" in recorded and "recorded 1,000 datagrams to run.pcap" in recorded
    assert sent.startswith("sent 1000 datagrams")
    rows = first_lines.strip().splitlines()
    assert len(rows) == 3 and all("UDP" in row and "7788" in row for row in rows), first_lines
    assert re.search(r"\b1000\b", io_stat), io_stat
    assert "replayed from run.pcap" in resent
    assert "received 1,000 datagrams" in replayed and "seq: lost 0 in 0 gaps" in replayed
