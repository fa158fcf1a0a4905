"""Capture files: record live batches, read them back field by field, check the pcap
with a reader written here (and with tshark when installed)."""

import os
import shutil
import signal
import socket as stdsocket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from helpers import HANG_S

import fastnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS = ["pcap", "npy"]
SLOT = 48  # smaller than some payloads below, so rows are truncated
SIZES = [0, 1, 7, 8, 33, 48, 49, 100, 1000]


def _payload(i, size):
    return bytes((i * 7 + k) % 256 for k in range(size))


def _receive_into(recorder, receiver, total, *, capacity=4):
    """Receive ``total`` datagrams in small batches, recording each; return copies."""
    batch = fastnet.Batch(capacity, SLOT, family=receiver.family)
    copies = []
    got = 0
    deadline = time.monotonic() + HANG_S
    while got < total:
        assert time.monotonic() < deadline, f"only {got} of {total} arrived"
        n = receiver.recv_batch(batch, timeout=5)
        recorder(batch)
        copies.append(
            {
                name: getattr(batch, name)[:n].copy()
                for name in (
                    "data",
                    "lengths",
                    "addresses",
                    "ports",
                    "flowinfo",
                    "scope_ids",
                    "timestamps",
                    "truncated",
                )
            }
        )
        got += n
    return {name: np.concatenate([c[name] for c in copies]) for name in copies[0]}


@pytest.fixture
def recorded(pair, tmp_path, request):
    """Send SIZES datagrams over a live pair with timestamps on; record; return both."""
    receiver, sender = pair
    receiver.enable_timestamps()
    fmt = request.param
    path = tmp_path / f"run.{fmt}"
    payloads = [_payload(i, size) for i, size in enumerate(SIZES)]
    with fastnet.open_recorder(path, local_address=receiver.getsockname()) as recorder:
        for payload in payloads:
            sender.sendto(payload, receiver.getsockname())
        live = _receive_into(recorder, receiver, len(payloads))
    assert recorder.stats.written == len(payloads)
    assert recorder.stats.capture_dropped == 0
    return path, live, payloads, receiver.getsockname(), sender.getsockname()


def _read_all(path, **kwargs):
    batches = list(fastnet.read_capture(path, **kwargs))
    fields = {}
    for name in ("lengths", "addresses", "ports", "flowinfo", "scope_ids", "timestamps", "truncated"):
        fields[name] = np.concatenate([getattr(b, name)[: b.count] for b in batches])
    fields["payloads"] = [bytes(b.payload(i)) for b in batches for i in range(b.count)]
    fields["address"] = [b.address(i) for b in batches for i in range(b.count)]
    return batches, fields


@pytest.mark.parametrize("recorded", FORMATS, indirect=True)
def test_read_back_matches_what_was_received(recorded):
    path, live, payloads, _, source = recorded
    batches, back = _read_all(path)
    assert all(b.family == live_family(live) for b in batches)
    for name in ("lengths", "ports", "timestamps", "truncated", "addresses", "flowinfo", "scope_ids"):
        np.testing.assert_array_equal(back[name], live[name], err_msg=name)
    assert back["payloads"] == [p[:SLOT] for p in payloads]
    assert list(back["truncated"]) == [len(p) > SLOT for p in payloads]
    assert all(address[:2] == source[:2] for address in back["address"])
    assert (live["timestamps"] > 0).all()


def live_family(live):
    return stdsocket.AF_INET if live["addresses"].shape[1] == 4 else stdsocket.AF_INET6


def _ones_complement(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def parse_pcap_independently(path):
    """The records of a pcap written by fastnet, every header field checked."""
    raw = open(path, "rb").read()
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, zone, linktype) == (0xA1B23C4D, 2, 4, 0, 101)
    offset, records = 24, []
    while offset < len(raw):
        sec, nsec, caplen, origlen = struct.unpack_from("<IIII", raw, offset)
        assert nsec < 1_000_000_000 and caplen <= origlen and caplen <= snaplen
        packet = raw[offset + 16 : offset + 16 + caplen]
        assert len(packet) == caplen
        offset += 16 + caplen
        version = packet[0] >> 4
        if version == 4:
            assert _ones_complement(packet[:20]) == 0xFFFF, "IPv4 header checksum"
            total, flags, proto = struct.unpack_from("!H2xH1xB", packet, 2)
            assert total == origlen and proto == 17 and flags == 0x4000
            src, dst = packet[12:16], packet[16:20]
            udp = packet[20:]
            pseudo = src + dst + struct.pack("!BBH", 0, 17, origlen - 20)
        else:
            assert version == 6
            plen, nxt = struct.unpack_from("!HB", packet, 4)
            assert nxt == 17 and plen + 40 == origlen
            src, dst = packet[8:24], packet[24:40]
            udp = packet[40:]
            pseudo = src + dst + struct.pack("!IxxxB", plen, 17)
        sport, dport, ulen, usum = struct.unpack_from("!HHHH", udp)
        payload = udp[8:]
        truncated = caplen < origlen
        assert ulen == len(payload) + 8 + (1 if truncated else 0)
        assert usum != 0
        if not truncated:
            assert _ones_complement(pseudo + udp) == 0xFFFF, "UDP checksum"
        records.append(
            dict(
                time=sec * 1_000_000_000 + nsec,
                src=src,
                dst=dst,
                sport=sport,
                dport=dport,
                payload=payload,
                truncated=truncated,
            )
        )
    return records


@pytest.mark.parametrize("recorded", ["pcap"], indirect=True)
def test_pcap_headers_are_valid_for_an_independent_reader(recorded):
    path, live, payloads, local, source = recorded
    records = parse_pcap_independently(path)
    family = live_family(live)
    assert [r["payload"] for r in records] == [p[:SLOT] for p in payloads]
    assert [r["truncated"] for r in records] == [len(p) > SLOT for p in payloads]
    assert [r["time"] for r in records] == live["timestamps"].tolist()
    for r in records:
        assert r["src"] == stdsocket.inet_pton(family, source[0])
        assert r["dst"] == stdsocket.inet_pton(family, local[0])
        assert (r["sport"], r["dport"]) == (source[1], local[1])


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("recorded", ["pcap"], indirect=True)
def test_tshark_reads_the_pcap(recorded):
    path, live, payloads, local, source = recorded
    ip = "ip" if live_family(live) == stdsocket.AF_INET else "ipv6"
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            f"{ip}.src",
            "-e",
            f"{ip}.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.length",
            "-e",
            "udp.checksum.status",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.time_epoch",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert len(out) == len(payloads)
    header = 28 if ip == "ip" else 48
    for line, payload, stamp in zip(out, payloads, live["timestamps"].tolist(), strict=True):
        src, dst, sport, dport, ulen, status, caplen, epoch = line.split(",")
        assert (src, dst) == (source[0], local[0])
        assert (int(sport), int(dport)) == (source[1], local[1])
        kept = min(len(payload), SLOT)
        assert int(caplen) == header + kept
        truncated = len(payload) > SLOT
        assert int(ulen) == 8 + kept + truncated
        assert status == ("2" if truncated else "1")  # 1 good, 2 not verifiable
        assert abs(float(epoch) - stamp / 1e9) < 1e-5


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_without_kernel_timestamps_get_the_hand_off_time(tmp_path, fmt):
    batch = fastnet.Batch.from_payloads([b"a", b"bc"])
    path = tmp_path / f"t.{fmt}"
    before = time.time_ns()
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        recorder(batch)
    after = time.time_ns()
    (back,) = fastnet.read_capture(path)
    assert before <= back.timestamps[0] == back.timestamps[1] <= after


@pytest.mark.parametrize("fmt", FORMATS)
def test_both_families_in_one_file_come_back_as_separate_batches(tmp_path, fmt):
    v4 = fastnet.Batch.from_payloads([b"four"] * 3)
    v4.addresses[:] = [127, 0, 0, 9]
    v6 = fastnet.Batch.from_payloads([b"six"] * 2, family=stdsocket.AF_INET6)
    v6.addresses[:, 15] = 1
    path = tmp_path / f"mixed.{fmt}"
    with fastnet.open_recorder(path, local_address=("::1", 9)) as recorder:
        recorder(v4)
        recorder(v6)
        recorder(v4)
    batches = list(fastnet.read_capture(path))
    assert [(b.family, b.count) for b in batches] == [
        (stdsocket.AF_INET, 3),
        (stdsocket.AF_INET6, 2),
        (stdsocket.AF_INET, 3),
    ]
    assert batches[0].address(0)[0] == "127.0.0.9" and batches[1].address(0)[0] == "::1"
    assert bytes(batches[1].payload(1)) == b"six"


def test_npy_capture_opens_with_numpy_load(tmp_path):
    batch = fastnet.Batch.from_payloads([b"abc", b"de"])
    batch.ports[:] = [1, 2]
    path = tmp_path / "run.npy"
    with fastnet.open_recorder(path) as recorder:
        recorder(batch)
        recorder(batch)
    records = np.load(path)
    assert records.shape == (4,)
    assert records["length"].tolist() == [3, 2, 3, 2]
    assert records["port"].tolist() == [1, 2, 1, 2]
    assert bytes(records["payload"][1][:2]) == b"de" and not records["payload"][1][2:].any()
    assert (records["ip_version"] == 4).all()


def test_npy_payload_width_cuts_and_flags_longer_rows(tmp_path):
    batch = fastnet.Batch.from_payloads([b"x" * 10, b"y" * 3])
    path = tmp_path / "narrow.npy"
    with fastnet.open_recorder(path, payload_bytes=4) as recorder:
        recorder(batch)
    assert recorder.stats.cut == 1
    (back,) = fastnet.read_capture(path)
    assert [bytes(p) for p, _ in back] == [b"xxxx", b"yyy"]
    assert back.truncated[:2].tolist() == [True, False]


def test_local_address_may_be_a_host_name(tmp_path):
    path = tmp_path / "named.pcap"
    with fastnet.open_recorder(path, local_address=("localhost", 9)) as recorder:
        recorder(fastnet.Batch.from_payloads([b"x"]))
    (record,) = parse_pcap_independently(path)
    assert record["dst"] == bytes([127, 0, 0, 1]) and record["dport"] == 9


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_recording_is_a_valid_empty_file(tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    fastnet.open_recorder(path).close()
    assert list(fastnet.read_capture(path)) == []
    if fmt == "npy":
        assert np.load(path).shape == (0,)


def test_files_are_never_world_writable(tmp_path):
    old = os.umask(0)
    try:
        fresh = tmp_path / "fresh.pcap"
        fastnet.open_recorder(fresh).close()
        existing = tmp_path / "existing.pcap"
        existing.touch()
        os.chmod(existing, 0o666)
        fastnet.open_recorder(existing).close()
    finally:
        os.umask(old)
    assert not os.stat(fresh).st_mode & 0o002
    assert not os.stat(existing).st_mode & 0o002


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_that_find_no_free_buffer_are_counted_as_dropped(tmp_path, fmt):
    recorder = fastnet.open_recorder(tmp_path / f"slow.{fmt}", buffers=1)
    gate = threading.Event()
    real_write = recorder._write

    def slow_write(data):
        gate.wait(10)
        real_write(data)

    recorder._write = slow_write
    batch = fastnet.Batch.from_payloads([b"x" * 20] * 5)
    recorder(batch)  # takes the only buffer; the writer waits on the gate
    recorder(batch)  # no free buffer: dropped, not waited for
    recorder(batch)
    gate.set()
    recorder.close()
    assert recorder.stats.written == 5
    assert recorder.stats.capture_dropped == 10
    assert sum(b.count for b in fastnet.read_capture(recorder.path)) == 5


def test_a_write_error_is_counted_and_raised_on_close(tmp_path):
    recorder = fastnet.open_recorder(tmp_path / "broken.pcap")

    def failing_write(data):
        raise OSError(28, "No space left on device")

    recorder._write = failing_write
    batch = fastnet.Batch.from_payloads([b"x"] * 3)
    recorder(batch)
    deadline = time.monotonic() + HANG_S
    while recorder.stats.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder(batch)  # after the error: counted, not raised here
    with pytest.raises(OSError) as info:
        recorder.close()
    assert info.value.errno == 28
    assert recorder.stats.written == 0
    assert recorder.stats.capture_dropped == 6
    recorder(batch)  # after close: counted
    assert recorder.stats.capture_dropped == 9


def test_an_unwritable_path_fails_at_open(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnet.open_recorder(tmp_path / "no-such-dir" / "run.pcap")


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(path="run.txt"), ValueError),
        (dict(path="run"), ValueError),
        (dict(path="x.pcap", format="pcapng"), ValueError),
        (dict(path="x.pcap", buffers=0), ValueError),
        (dict(path="x.npy", payload_bytes=0), ValueError),
        (dict(path="x.npy", payload_bytes=70000), ValueError),
        (dict(path="x.pcap", local_address="127.0.0.1:9"), TypeError),
        (dict(path="x.pcap", local_address=("127.0.0.1", "9")), TypeError),
        (dict(path="x.pcap", local_address=("127.0.0.1", 70000)), ValueError),
        (dict(path="x.pcap", local_address=("no such host.invalid", 9)), OSError),
    ],
)
def test_bad_recorder_arguments(tmp_path, kwargs, error):
    kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(error):
        fastnet.open_recorder(**kwargs)
    assert not os.path.exists(kwargs["path"])


RECORDING_CHILD = textwrap.dedent("""
    import sys, time, numpy, fastnet
    path, mode = sys.argv[1], sys.argv[2]
    recorder = fastnet.open_recorder(path)
    batch = fastnet.Batch.from_payloads([bytes(range(200))] * 64)
    recorder(batch)

    def readable():
        try:
            if path.endswith(".npy") and len(numpy.load(path)) < 64:
                return False
            return sum(b.count for b in fastnet.read_capture(path)) >= 64
        except (OSError, ValueError, EOFError, fastnet.CaptureError):   # not written yet
            return False

    deadline = time.monotonic() + 30
    while not readable():   # the writer has put the first 64 in the file
        if time.monotonic() > deadline:
            sys.exit("the first batch never reached the file")
        time.sleep(0.01)
    if mode == "exit":
        print("recording", flush=True)
        sys.exit(0)   # no close(): the writer still finishes the file
    try:
        print("recording", flush=True)   # in the try: Ctrl-C from now on is caught
        while True:
            recorder(batch)
            time.sleep(0.001)
    except KeyboardInterrupt:
        recorder.close()
        print("closed", recorder.stats.written, flush=True)
""")


def _run_recording_child(path, mode):
    child = subprocess.Popen(
        [sys.executable, "-c", RECORDING_CHILD, str(path), mode], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout.readline().strip() == "recording"
        if mode != "exit":
            time.sleep(0.3)  # only so that more batches go than the first
            child.send_signal(signal.SIGINT if mode == "interrupt" else signal.SIGKILL)
        out, _ = child.communicate(timeout=HANG_S)
    finally:
        child.kill()
    return child.returncode, out


@pytest.mark.parametrize("fmt", FORMATS)
def test_ctrl_c_then_close_leaves_a_complete_file(tmp_path, fmt):
    path = tmp_path / f"run.{fmt}"
    code, out = _run_recording_child(path, "interrupt")
    assert code == 0
    written = int(out.split()[-1])
    assert sum(b.count for b in fastnet.read_capture(path)) == written >= 64
    if fmt == "npy":
        assert np.load(path).shape == (written,)


@pytest.mark.parametrize("fmt", FORMATS)
def test_program_exit_without_close_still_finishes_the_file(tmp_path, fmt):
    path = tmp_path / f"run.{fmt}"
    code, _ = _run_recording_child(path, "exit")
    assert code == 0
    assert sum(b.count for b in fastnet.read_capture(path)) == 64
    if fmt == "npy":
        assert np.load(path).shape == (64,)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_killed_writer_leaves_what_was_written_readable(tmp_path, fmt):
    path = tmp_path / f"run.{fmt}"
    code, _ = _run_recording_child(path, "kill")
    assert code == -signal.SIGKILL
    got = 0
    try:
        for batch in fastnet.read_capture(path):
            got += batch.count
    except fastnet.CaptureError as exc:  # a record cut mid-write: named, after the rest
        assert exc.offset > 0
    assert got >= 64
    if fmt == "npy":
        assert 64 <= len(np.load(path)) <= got  # the header never claims too much


def test_payload_bytes_is_refused_for_pcap(tmp_path):
    # It sets the width of .npy records; on a pcap file the .npy header was
    # written over the pcap one and the file could not be read back.
    with pytest.raises(ValueError, match="npy captures only"):
        fastnet.open_recorder(str(tmp_path / "run.pcap"), payload_bytes=64)
    assert not (tmp_path / "run.pcap").exists()


def test_payload_bytes_cuts_npy_rows_and_reads_back(tmp_path):
    path = str(tmp_path / "run.npy")
    with fastnet.open_recorder(path, payload_bytes=2) as recorder:
        recorder(fastnet.Batch.from_payloads([b"abc", b"x"]))
    assert recorder.stats.cut == 1
    batches = list(fastnet.read_capture(path))
    assert [bytes(payload) for batch in batches for payload, _ in batch] == [b"ab", b"x"]
    assert [bool(flag) for batch in batches for flag in batch.truncated[: batch.count]] == [True, False]
