"""``fastnet recv --cpu`` and the interrupts ``fastnet info`` reports."""

import json
import os

import pytest

from fastnet.cli import info as info_cli
from fastnet.cli import main


def run_cli(argv):
    """main(argv)'s exit status, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


TABLE = """           CPU0       CPU1
 36:          0      37688 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 41:       1999          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
 42:          0       6123 PCI-MSIX-0000:00:04.0   2-edge      virtio3-tx
 43:          0          0 PCI-MSIX-0000:00:04.0   3-edge      virtio3-event
 50:          5          0   IR-PCI-MSI 1048576-edge      eth1-TxRx-0
 51:          0          0   IR-PCI-MSI 1048577-edge      eth1-TxRx-1
NMI:          0          0   Non-maskable interrupts
"""


def test_interrupts_are_matched_to_interfaces_by_name_or_device():
    found = info_cli.interrupt_cpus(TABLE, {"eth0": {"eth0", "virtio3"}, "eth1": {"eth1"}, "eth2": {"eth2"}})
    assert found == {
        "eth0": {"irqs": [41, 42, 43], "cpus": [0, 1]},
        "eth1": {"irqs": [50, 51], "cpus": [0]},
    }
    assert info_cli.interrupt_cpus("", {"eth0": {"eth0"}}) == {}


def test_info_reports_the_interrupts(capsys):
    assert run_cli(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    interrupts = info["nic_interrupts"]
    assert interrupts is None or all(set(v) == {"irqs", "cpus"} for v in interrupts.values())
    assert run_cli(["info"]) == 0
    assert "network interrupts" in capsys.readouterr().out


def test_recv_pins_its_capture_thread(capsys):
    cpu = max(os.sched_getaffinity(0))
    assert run_cli(["recv", "0", "--cpu", str(cpu), "--duration", "0.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["packets"] == 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["recv", "--cpu", "100000"], "not one this process may run on"),
        (["recv", "--cpu", "x"], "not a CPU number"),
        (["recv", "--tcp", "--cpu", "0"], "--cpu do not apply to --tcp"),
        (["recv", "--workers", "2", "--cpu", "0"], "--cpu pins one capture thread"),
    ],
)
def test_recv_refuses_bad_cpu_arguments(argv, message, capsys):
    assert run_cli(argv) == 2
    assert message in capsys.readouterr().err
