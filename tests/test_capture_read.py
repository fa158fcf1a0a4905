"""read_capture on files cut short, corrupt, of unknown format, or written by other tools."""

import socket as stdsocket
import struct

import numpy as np
import pytest

import fastnet

ROWS = 10


def _write(path, rows=ROWS, family=stdsocket.AF_INET):
    batch = fastnet.Batch.from_payloads([bytes([i]) * (10 + i) for i in range(rows)], family=family)
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        recorder(batch)
    return path


def _consume(path, **kwargs):
    """(rows yielded before the error, the CaptureError or None)."""
    got = []
    try:
        for batch in fastnet.read_capture(path, **kwargs):
            got.extend(bytes(p) for p, _ in batch)
    except fastnet.CaptureError as exc:
        return got, exc
    return got, None


def _pcap_record_offsets(path):
    raw = open(path, "rb").read()
    offsets, offset = [], 24
    while offset < len(raw):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<I", raw, offset + 8)[0]
    return raw, offsets


@pytest.mark.parametrize("cut_into", [5, 20])  # inside the record header / its data
def test_pcap_cut_short_yields_intact_rows_then_names_the_offset(tmp_path, cut_into):
    raw, offsets = _pcap_record_offsets(_write(tmp_path / "a.pcap"))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[: offsets[7] + cut_into])
    got, error = _consume(cut, batch_size=3)
    assert got == [bytes([i]) * (10 + i) for i in range(7)]
    assert error is not None and error.offset == offsets[7]
    assert str(offsets[7]) in str(error)


def test_pcap_record_claiming_too_much_is_corrupt(tmp_path):
    raw, offsets = _pcap_record_offsets(_write(tmp_path / "a.pcap"))
    bad = bytearray(raw)
    struct.pack_into("<I", bad, offsets[4] + 8, 10_000_000)
    path = tmp_path / "bad.pcap"
    path.write_bytes(bytes(bad))
    got, error = _consume(path, batch_size=2)
    assert len(got) == 4
    assert error.offset == offsets[4] and "corrupt" in str(error)


def test_pcap_header_cut_short(tmp_path):
    path = tmp_path / "short.pcap"
    path.write_bytes(open(_write(tmp_path / "a.pcap"), "rb").read()[:10])
    got, error = _consume(path)
    assert got == [] and error is not None


def _npy_layout(path):
    raw = open(path, "rb").read()
    start = 10 + int.from_bytes(raw[8:10], "little")
    itemsize = np.load(path).dtype.itemsize
    return raw, start, itemsize


def test_npy_partial_record_yields_complete_rows_then_names_the_offset(tmp_path):
    raw, start, itemsize = _npy_layout(_write(tmp_path / "a.npy"))
    path = tmp_path / "cut.npy"
    path.write_bytes(raw[: start + 6 * itemsize + 5])  # header still promises 10
    got, error = _consume(path, batch_size=4)
    assert got == [bytes([i]) * (10 + i) for i in range(6)]
    assert error.offset == start + 6 * itemsize


def test_npy_records_after_the_last_header_update_are_recovered(tmp_path):
    raw, start, itemsize = _npy_layout(_write(tmp_path / "a.npy"))
    stale = raw.replace(b"'shape': (10,)", b"'shape': (3,) ")  # as if killed before the update
    path = tmp_path / "stale.npy"
    path.write_bytes(stale)
    assert len(np.load(path)) == 3
    got, error = _consume(path)
    assert error is None and len(got) == ROWS


def test_npy_corrupt_record_is_named(tmp_path):
    raw, start, itemsize = _npy_layout(_write(tmp_path / "a.npy"))
    bad = bytearray(raw)
    bad[start + 5 * itemsize + 13] = 7  # ip_version of record 5
    path = tmp_path / "bad.npy"
    path.write_bytes(bytes(bad))
    got, error = _consume(path, batch_size=4)
    assert len(got) == 5
    assert error.offset == start + 5 * itemsize and "corrupt" in str(error)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"hello, this is text\n", "unknown capture format"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "pcapng"),
    ],
)
def test_unknown_formats_are_refused_at_open(tmp_path, content, message):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(fastnet.CaptureError, match=message) as info:
        fastnet.read_capture(path)
    assert info.value.offset == 0
    assert isinstance(info.value, ValueError)


def test_an_npy_that_is_not_a_capture_is_refused(tmp_path):
    path = tmp_path / "numbers.npy"
    np.save(path, np.arange(10))
    with pytest.raises(fastnet.CaptureError, match="not a fastnet capture"):
        list(fastnet.read_capture(path))


def test_unsupported_pcap_link_type_is_refused(tmp_path):
    path = tmp_path / "usb.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 189))
    with pytest.raises(fastnet.CaptureError, match="link type 189") as info:
        list(fastnet.read_capture(path))
    assert info.value.offset == 20


@pytest.mark.parametrize(
    "batch_size,error", [(0, ValueError), (-1, ValueError), ("8", TypeError), (True, TypeError)]
)
def test_bad_batch_size(tmp_path, batch_size, error):
    with pytest.raises(error):
        fastnet.read_capture(_write(tmp_path / "a.pcap"), batch_size=batch_size)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnet.read_capture(tmp_path / "absent.pcap")


@pytest.mark.parametrize("fmt", ["pcap", "npy"])
def test_batch_size_and_slot_size(tmp_path, fmt):
    path = _write(tmp_path / f"a.{fmt}")
    batches = list(fastnet.read_capture(path, batch_size=4, slot_size=12))
    assert [b.count for b in batches] == [4, 4, 2]
    assert all(b.slot_size == 12 for b in batches)
    rows = [bytes(p) for b in batches for p, _ in b]
    assert rows == [(bytes([i]) * (10 + i))[:12] for i in range(ROWS)]
    flags = [bool(f) for b in batches for f in b.truncated[: b.count]]
    assert flags == [10 + i > 12 for i in range(ROWS)]


# -- pcap files as other tools write them ---------------------------------------


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(payload, proto=17, src="10.0.0.1", dst="10.0.0.2", sport=1111, dport=2222, frag=0, options=b""):
    body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload if proto == 17 else payload
    ihl = 5 + len(options) // 4
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            0,
            ihl * 4 + len(body),
            1,
            frag,
            64,
            proto,
            0,
            stdsocket.inet_aton(src),
            stdsocket.inet_aton(dst),
        )
        + options
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + body


def ipv6(payload, src="fd00::1", dst="fd00::2", sport=3333, dport=4444, extension=None):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    nxt, rest = 17, udp
    if extension == "hop-by-hop":
        nxt, rest = 0, bytes([17, 0]) + bytes(6) + udp
    elif extension == "fragment":  # a non-first fragment
        nxt, rest = 44, bytes([17, 0]) + struct.pack("!HI", 8 << 3, 1) + udp
    return (
        struct.pack(
            "!IHBB16s16s",
            6 << 28,
            len(rest),
            nxt,
            64,
            stdsocket.inet_pton(stdsocket.AF_INET6, src),
            stdsocket.inet_pton(stdsocket.AF_INET6, dst),
        )
        + rest
    )


def ethernet(packet, ethertype, vlan=False):
    head = bytes(6) + bytes([2, 0, 0, 0, 0, 1])
    if vlan:
        head += struct.pack("!HH", 0x8100, 5)
    return head + struct.pack("!H", ethertype) + packet


def sll(packet, ethertype):
    return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), ethertype) + packet


def sll2(packet, ethertype):
    return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, bytes(8)) + packet


def pcap_file(path, linktype, packets, *, order="<", nanoseconds=False, snaplen=65535):
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for i, packet in enumerate(packets):
        kept = packet[:snaplen]
        out += struct.pack(order + "IIII", 1_600_000_000 + i, 500 + i, len(kept), len(packet))
        out += kept
    path.write_bytes(out)
    return path


ARP = bytes(28)
TCP = ipv4(bytes(20), proto=6)
ICMP = ipv4(bytes(8), proto=1)
FRAGMENT = ipv4(b"tail", frag=0x2000)  # MF set: the rest is elsewhere


@pytest.mark.parametrize(
    "linktype,frame",
    [
        (1, lambda p, t: ethernet(p, t)),
        (1, lambda p, t: ethernet(p, t, vlan=True)),
        (113, sll),
        (276, sll2),
        (101, lambda p, t: p),
    ],
)
@pytest.mark.parametrize("order", ["<", ">"])
def test_foreign_pcaps_yield_udp_and_count_the_rest(tmp_path, linktype, frame, order):
    packets = [
        frame(ipv4(b"first"), 0x0800),
        frame(TCP, 0x0800),
        frame(ipv6(b"second", extension="hop-by-hop"), 0x86DD),
        frame(ICMP, 0x0800),
        frame(ipv4(b"third", options=bytes(4)), 0x0800),
        frame(FRAGMENT, 0x0800),
        frame(ipv6(b"frag", extension="fragment"), 0x86DD),
    ]
    if linktype != 101:
        packets.append(frame(ARP, 0x0806))
    reader = fastnet.read_capture(pcap_file(tmp_path / "f.pcap", linktype, packets, order=order))
    batches = list(reader)
    assert [(b.family, [bytes(p) for p, _ in b]) for b in batches] == [
        (stdsocket.AF_INET, [b"first"]),
        (stdsocket.AF_INET6, [b"second"]),
        (stdsocket.AF_INET, [b"third"]),
    ]
    assert batches[0].address(0) == ("10.0.0.1", 1111)
    assert batches[1].address(0) == ("fd00::1", 3333, 0, 0)
    assert batches[0].timestamps[0] == 1_600_000_000 * 10**9 + 500 * 1000  # µs magic
    reasons = dict(reader.skip_reasons)
    assert reasons.pop("not UDP") == 2 and reasons.pop("IP fragment") == 2
    assert reasons == ({} if linktype == 101 else {"not IP": 1})
    assert reader.skipped == len(packets) - 3 and reader.datagrams == 3


def test_snap_length_cuts_become_truncated_rows(tmp_path):
    packets = [ipv4(b"x" * 100), ipv4(b"y" * 10), ipv4(b"z" * 5)[:24]]
    reader = fastnet.read_capture(pcap_file(tmp_path / "s.pcap", 101, packets, snaplen=60, nanoseconds=True))
    (batch,) = list(reader)
    assert [bytes(p) for p, _ in batch] == [b"x" * 32, b"y" * 10]
    assert batch.truncated[:2].tolist() == [True, False]
    assert batch.timestamps[0] == 1_600_000_000 * 10**9 + 500
    assert dict(reader.skip_reasons) == {"cut before the UDP header": 1}
