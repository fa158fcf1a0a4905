"""``fastnet recv --frames`` and ``fastnet send --frames``: synthetic frames over loopback into HDF5."""

import json

import numpy as np
import pytest
from cli_helpers import bound_port, finish, start_fastnet, start_recv

from fastnet.frames.synthetic import frame_pattern

SPEC_TOML = """
payload_offset = 16
payload_size = 1000
packets_per_frame = 8
packet_size = 1016

[frame_id]
offset = 0
size = 8

[index]
offset = 8
size = 2
byteorder = "little"
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC_TOML)
    return path


def test_send_and_receive_frames_to_hdf5(backend, tmp_path, spec_file):
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "run.h5"
    receiver = start_recv(
        "127.0.0.1:0",
        "--frames",
        str(spec_file),
        "--out",
        str(out),
        "--count",
        "400",
        "--duration",
        "30",
        "--rcvbuf",
        "8M",
        "--json",
        "--backend",
        backend,
    )
    port = bound_port(receiver)
    sender = start_fastnet(
        "send", f"127.0.0.1:{port}", "--frames", str(spec_file), "--count", "50", "--backend", backend
    )
    status, _, err = finish(sender)
    assert status == 0, err
    status, out_text, err = finish(receiver)
    assert status == 0, err
    report = json.loads(out_text)
    assert report["accounted"] == 400
    assert (
        report["packets"] == report["packets_placed"] + report["packets_late"] + report["packets_duplicate"]
    )
    assert report["frames_written"] == report["frames_complete"] + report["frames_incomplete"]
    with h5py.File(out, "r") as f:
        ids = f["frames/frame_id"][()]
        data, present = f["frames/data"][()], f["frames/present"][()]
        stats = json.loads(f.attrs["stats"])
    assert len(ids) == report["frames_written"]
    assert stats["source"]["packets_placed"] == report["packets_placed"]
    if report["kernel_drops"] == 0:
        assert ids.tolist() == list(range(50)) and present.all()
    from fastnet import load_frame_spec

    spec = load_frame_spec(spec_file)
    for frame_id, rows, mask in zip(ids, data, present, strict=True):
        assert np.array_equal(rows[mask], frame_pattern(spec, int(frame_id))[mask])


@pytest.mark.parametrize(
    "extra",
    [
        ["--tcp"],
        ["--workers", "2"],
        ["--out", "run.pcap"],
    ],
)
def test_recv_frames_refuses_what_does_not_go_with_it(spec_file, extra):
    child = start_recv("127.0.0.1:0", "--frames", str(spec_file), "--duration", "1", *extra)
    status, _, err = finish(child)
    assert status == 2
    assert "--frames" in err or "do not go" in err


def test_recv_frames_with_a_bad_spec_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("payload_offset = 0\n")
    child = start_recv("127.0.0.1:0", "--frames", str(bad), "--duration", "1")
    status, _, err = finish(child)
    assert status == 2 and "spec" in err


def test_send_frames_refuses_size(spec_file):
    status, _, err = finish(start_fastnet("send", "127.0.0.1:9", "--frames", str(spec_file), "--size", "100"))
    assert status == 2 and "--size" in err


def test_the_status_line_shows_frames_per_second():
    from fastnet.cli._recv_report import StatusLine

    before = dict(packets=0, bytes=0, frames_complete=0, frames_incomplete=0, frames_missing=0)
    after = dict(packets=80, bytes=8000, frames_complete=10, frames_incomplete=2, frames_missing=1)
    line = StatusLine(before)._line(after, 0.5)
    assert "frames/s: complete 20.0 incomplete 4.0 missing 2.0" in line


def test_max_frame_age_needs_frames_and_a_positive_number(spec_file):
    status, _, err = finish(start_recv("127.0.0.1:0", "--max-frame-age", "1", "--duration", "1"))
    assert status == 2 and "--max-frame-age" in err and "--frames" in err
    child = start_recv("127.0.0.1:0", "--frames", str(spec_file), "--max-frame-age", "0", "--duration", "1")
    status, _, err = finish(child)
    assert status == 2 and "--max-frame-age" in err
