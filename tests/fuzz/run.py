"""Run the fuzz targets for a bounded time.

    python -m tests.fuzz.run --seconds 60                 # every target, 60 s in all
    python tests/fuzz/run.py --target pcap --seconds 60   # one target
    python tests/fuzz/run.py --seconds 600 --update-corpus

Targets are the ``fuzz_<name>.py`` files here. With atheris installed (the
``fuzz`` extra: ``pip install -e '.[fuzz]'``) each target runs under
libFuzzer, coverage-guided over fastnet's Python code, starting from
``corpus/<name>/``; without it (or with ``--engine random``) a bounded
random mutation loop runs instead, seeded from the same corpus.

``--update-corpus`` (atheris only) merges what the run found into
``corpus/<name>/``, keeping a minimal set that covers the same code: the
``seed-*`` files of tests/fuzz/seeds.py and at most MAX_CORPUS small files.
Findings (an input that crashes, raises an unexpected exception, or hangs
for more than ``--timeout`` seconds) are written to ``--artifacts``
(default ``fuzz-artifacts/``) and make the exit status 1. The corpus is replayed by tests/test_fuzz_corpus.py.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
TARGETS = sorted(
    name[len("fuzz_") : -len(".py")]
    for name in os.listdir(HERE)
    if name.startswith("fuzz_") and name.endswith(".py")
)
MAX_CORPUS = 40
MAX_LEN = 4096


def corpus_files(target: str) -> list:
    folder = os.path.join(CORPUS, target)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if not name.startswith("."))


def load_target(target: str):
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    return importlib.import_module(f"fuzz_{target}")


# -- atheris (libFuzzer) ---------------------------------------------------------


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(target: str, seconds: float, timeout: int, artifacts: str, update: bool) -> dict:
    seeds = os.path.join(CORPUS, target)
    os.makedirs(seeds, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fastnet-fuzz-{target}-") as found:
        script = os.path.join(HERE, f"fuzz_{target}.py")
        command = [
            sys.executable,
            script,
            found,
            seeds,
            f"-max_total_time={max(1, int(seconds))}",
            f"-timeout={timeout}",
            f"-max_len={MAX_LEN}",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}{os.sep}{target}-",
        ]
        env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        log = done.stdout
        runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log) or re.search(
            r"Done (\d+) runs", log
        )
        result = {
            "target": target,
            "engine": "atheris",
            "executions": int(runs.group(1)) if runs else 0,
            "findings": 0 if done.returncode == 0 else 1,
            "status": done.returncode,
        }
        if done.returncode != 0:
            result["log"] = log[-4000:]
        elif update:
            result["corpus"] = _merge_corpus(target, script, env, seeds, found)
        return result


def _merge_corpus(target, script, env, seeds, found) -> int:
    """Replace corpus/<target>/ by a minimal set covering what it and ``found`` cover.

    The ``seed-*`` files (tests/fuzz/seeds.py) always stay; of the rest, the
    smallest MAX_CORPUS that libFuzzer's merge keeps.
    """
    with tempfile.TemporaryDirectory(prefix=f"fastnet-merge-{target}-") as merged:
        subprocess.run(
            [sys.executable, script, "-merge=1", f"-max_len={MAX_LEN}", merged, seeds, found],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        kept = {_content(path) for path in corpus_files(target) if os.path.basename(path).startswith("seed-")}
        names = [
            name
            for name in sorted(
                os.listdir(merged), key=lambda name: os.path.getsize(os.path.join(merged, name))
            )
            if _content(os.path.join(merged, name)) not in kept
        ]
        if not names:  # nothing came out of the merge: keep the corpus as it was
            return len(corpus_files(target))
        if len(names) > MAX_CORPUS:
            sys.stderr.write(
                f"{target}: the merge kept {len(names)} inputs; the {MAX_CORPUS} smallest are saved\n"
            )
        for old in corpus_files(target):
            if not os.path.basename(old).startswith("seed-"):
                os.unlink(old)
        for name in names[:MAX_CORPUS]:
            shutil.copy(os.path.join(merged, name), os.path.join(seeds, name))
        return len(corpus_files(target))


def _content(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


# -- the fallback: bounded random mutation ------------------------------------------


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang("input ran longer than the time limit")


def mutate(rng: random.Random, data: bytes, pool: list) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        where = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # flip a bit
            where = min(where, len(out) - 1)
            out[where] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:  # an interesting byte value
            where = min(where, len(out) - 1)
            out[where] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2:  # insert random bytes
            out[where:where] = os.urandom(rng.randint(1, 16))
        elif kind == 3 and out:  # delete a range
            out[where : where + rng.randint(1, 16)] = b""
        elif kind == 4 and out:  # duplicate a range
            start = rng.randrange(len(out))
            out[where:where] = out[start : start + rng.randint(1, 64)]
        elif pool:  # splice with another input
            other = rng.choice(pool)
            out[where:] = other[rng.randrange(len(other) + 1) :]
    return bytes(out[:MAX_LEN])


def run_random(target: str, seconds: float, timeout: int, artifacts: str, seed=None) -> dict:
    module = load_target(target)
    pool = []
    for path in corpus_files(target):
        with open(path, "rb") as handle:
            pool.append(handle.read())
    pool = pool or [b""]
    rng = random.Random(seed)
    executions = findings = 0
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            data = mutate(rng, rng.choice(pool), pool) if executions else pool[0]
            signal.alarm(timeout)
            try:
                module.test_one_input(data)
            except Exception:
                findings += 1
                _save_finding(artifacts, target, data, traceback.format_exc())
            finally:
                signal.alarm(0)
            executions += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    return {
        "target": target,
        "engine": "random",
        "executions": executions,
        "findings": findings,
        "status": 1 if findings else 0,
    }


def _save_finding(artifacts: str, target: str, data: bytes, report: str) -> None:
    os.makedirs(artifacts, exist_ok=True)
    name = f"{target}-crash-{hashlib.sha1(data).hexdigest()}"
    with open(os.path.join(artifacts, name), "wb") as handle:
        handle.write(data)
    with open(os.path.join(artifacts, name + ".txt"), "w") as handle:
        handle.write(report)
    sys.stderr.write(f"finding in {target}: {name}\n{report}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run fastnet's fuzz targets for a bounded time.")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        action="append",
        help="a target to run (repeat for several; default: all)",
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="total time, shared equally by the targets (default 60)"
    )
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument(
        "--timeout", type=int, default=10, help="seconds one input may take before it counts as a hang"
    )
    parser.add_argument(
        "--artifacts", default="fuzz-artifacts", help="where findings are written (default fuzz-artifacts/)"
    )
    parser.add_argument(
        "--update-corpus",
        action="store_true",
        help="merge what was found into corpus/<target>/ (atheris only)",
    )
    parser.add_argument("--seed", type=int, help="random engine: the seed")
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be greater than 0")
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _atheris_available() else "random"
    elif engine == "atheris" and not _atheris_available():
        parser.error("atheris is not installed: pip install -e '.[fuzz]'")
    if args.update_corpus and engine != "atheris":
        parser.error("--update-corpus needs the atheris engine")
    artifacts = os.path.abspath(args.artifacts)
    os.makedirs(artifacts, exist_ok=True)
    targets = args.target or TARGETS
    share = args.seconds / len(targets)
    results = []
    for target in targets:
        if engine == "atheris":
            result = run_atheris(target, share, args.timeout, artifacts, args.update_corpus)
        else:
            result = run_random(target, share, args.timeout, artifacts, args.seed)
        results.append(result)
        line = (
            f"{target:<8} {result['engine']:<8} {result['executions']:>10,} executions  "
            f"{result['findings']} findings"
        )
        if "corpus" in result:
            line += f"  corpus {result['corpus']} files"
        print(line, flush=True)
        if "log" in result:
            print(result["log"], file=sys.stderr)
    total = sum(result["executions"] for result in results)
    failed = [result["target"] for result in results if result["status"]]
    print(f"total: {total:,} executions, findings in: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
