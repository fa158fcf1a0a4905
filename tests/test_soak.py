"""A short soak under faults (tools/soak.py): every datagram accounted for, nothing left open.

The full soak (60 s by default, or as long as wanted) is a separate command,
see README's development section; this runs each fault once, for about 5 s.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOAK = os.path.join(ROOT, "tools", "soak.py")


def test_a_short_soak_accounts_for_every_datagram(backend):
    run = subprocess.run(
        [
            sys.executable,
            SOAK,
            "--seconds",
            "5",
            "--cycles",
            "1",
            "--pps",
            "20000",
            "--backend",
            backend,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode in (0, 1), run.stderr
    result = json.loads(run.stdout)
    assert result["problems"] == [] and result["ok"] and run.returncode == 0
    # Every fault was applied, and each blocked call it should end, ended.
    assert all(entry["count"] >= 1 and entry["problems"] == 0 for entry in result["faults"].values())
    assert result["senders_killed"] >= 1 and result["receivers"] >= 3
    # sent == packets + kernel_drops + ring_overruns + unread, exactly (rows sent
    # by a killed sender are "in doubt" only if something was dropped around the kill).
    assert result["sent"] > 0
    assert 0 <= result["accounted"] - result["sent"] <= result["in_doubt"]
    assert result["accounted"] == (
        result["packets"] + result["kernel_drops"] + result["ring_overruns"] + result["unread"]
    )
    assert result["consumer_seen"] == result["delivered"]
    resources = result["resources"]
    assert resources["fds_after"] == resources["fds_before"]
    assert resources["threads_after"] == resources["threads_before"]
    assert resources["children_after"] == 0


def test_soak_arguments_are_checked():
    run = subprocess.run(
        [sys.executable, SOAK, "--seconds", "0"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert run.returncode == 2 and "--seconds" in run.stderr
