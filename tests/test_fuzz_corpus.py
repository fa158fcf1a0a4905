"""Replay the fuzz corpus: every saved input still gives a documented result.

tests/fuzz/corpus/<target>/ holds the inputs the fuzzers found interesting
(and the seeds they started from); tests/fuzz/fuzz_<target>.py says what
each input must do. atheris is not needed here: the targets are plain
functions of bytes.
"""

import importlib.util
import os

import pytest

FUZZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz")


def _runner():
    spec = importlib.util.spec_from_file_location("fastnet_fuzz_run", os.path.join(FUZZ, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_run = _runner()
TARGETS, corpus_files, load_target = _run.TARGETS, _run.corpus_files, _run.load_target

CASES = [
    pytest.param(target, path, id=f"{target}/{os.path.basename(path)[:12]}")
    for target in TARGETS
    for path in corpus_files(target)
]


def test_every_target_has_a_corpus():
    assert set(TARGETS) == {"cmsg", "frames", "frame_placement", "gro", "npy", "pcap"}
    for target in TARGETS:
        assert corpus_files(target), f"tests/fuzz/corpus/{target}/ is empty"


@pytest.mark.parametrize("target,path", CASES)
def test_corpus_input(target, path):
    with open(path, "rb") as handle:
        data = handle.read()
    load_target(target).test_one_input(data)


def test_targets_are_not_collected_as_tests():
    # The fuzz targets run under the fuzz runner only (pytest's default
    # patterns, test_*.py and *_test.py, do not match fuzz_*.py or run.py).
    names = os.listdir(FUZZ)
    assert not [name for name in names if name.startswith("test_") or name.endswith("_test.py")]
