"""Writing classic libpcap files: one record per datagram, headers built with numpy.

Format choices, and why:

* Magic 0xa1b23c4d, nanosecond timestamps. The kernel stamps datagrams in
  nanoseconds (SO_TIMESTAMPNS); the microsecond magic 0xa1b2c3d4 would throw
  three digits away. libpcap >= 1.5, tshark and Wireshark read it.
* Little-endian throughout the file and record headers (the magic tells a
  reader the byte order, so either is valid; a fixed one keeps the numpy
  dtypes simple). The IP and UDP headers are in network order, as on the wire.
* LINKTYPE_RAW (101): each record starts with an IPv4 or IPv6 header (the
  version nibble tells which), so Wireshark shows IP + UDP with the real
  source address and port (the datagram's sender) and destination (the
  receiver's bound address), and one file can hold both families.
* Checksums are real: the IPv4 header checksum, and the UDP checksum for both
  families (RFC 768 allows 0 over IPv4 but RFC 8200 forbids it over IPv6; one
  rule for both lets any reader check any record).

Truncated rows (the datagram was longer than the receiver's slot): the
receiver only learns that it was longer, not by how much. The record stores
the bytes that were kept (caplen) and claims one byte more in its original
length and in the IPv4 total length / IPv6 payload length / UDP length: the
smallest length that is still truncated. ``caplen < len`` is how pcap marks a
packet cut by a snap length, so Wireshark shows "[Packet size limited during
capture]" and does not check the UDP checksum; the checksum is computed as if
the missing byte were zero. Reading the file back gives ``truncated=True`` and
``lengths`` = the bytes kept, exactly what the receiver had.
"""

from __future__ import annotations

import ipaddress
import socket as _stdsocket
from typing import cast

import numpy as np

__all__ = ["MAGIC_NS", "LINKTYPE_RAW", "SNAPLEN", "file_header", "PcapEncoder", "header_size"]

MAGIC_NS = 0xA1B23C4D
MAGIC_US = 0xA1B2C3D4
LINKTYPE_RAW = 101
#: libpcap's MAXIMUM_SNAPLEN; larger than any UDP datagram plus its IP header.
SNAPLEN = 262144

_RECORD = [("ts_sec", "<u4"), ("ts_frac", "<u4"), ("caplen", "<u4"), ("origlen", "<u4")]
_UDP = [("sport", ">u2"), ("dport", ">u2"), ("ulen", ">u2"), ("usum", ">u2")]
_V4 = np.dtype(
    _RECORD
    + [
        ("ver_ihl", "u1"),
        ("tos", "u1"),
        ("total", ">u2"),
        ("ident", ">u2"),
        ("frag", ">u2"),
        ("ttl", "u1"),
        ("proto", "u1"),
        ("ipsum", ">u2"),
        ("src", "u1", (4,)),
        ("dst", "u1", (4,)),
    ]
    + _UDP
)
_V6 = np.dtype(
    _RECORD
    + [
        ("vtcfl", ">u4"),
        ("plen", ">u2"),
        ("nxt", "u1"),
        ("hlim", "u1"),
        ("src", "u1", (16,)),
        ("dst", "u1", (16,)),
    ]
    + _UDP
)
_HEADER_DTYPE: dict[int, np.dtype] = {_stdsocket.AF_INET: _V4, _stdsocket.AF_INET6: _V6}
#: Bytes before the payload: pcap record header + IP header + UDP header (44 or 64).
_IP_HEADER = {_stdsocket.AF_INET: 20, _stdsocket.AF_INET6: 40}

_DONT_FRAGMENT = 0x4000
_TTL = 64
_IPPROTO_UDP = 17
_MAX_LENGTH_FIELD = 0xFFFF


def header_size(family: int) -> int:
    """Bytes in front of each payload in a record (record + IP + UDP headers)."""
    return _HEADER_DTYPE[family].itemsize


def file_header(snaplen: int = SNAPLEN, linktype: int = LINKTYPE_RAW) -> bytes:
    """The 24-byte pcap global header (version 2.4, nanosecond magic)."""
    head = np.zeros(
        1,
        dtype=[
            ("magic", "<u4"),
            ("major", "<u2"),
            ("minor", "<u2"),
            ("zone", "<i4"),
            ("sigfigs", "<u4"),
            ("snaplen", "<u4"),
            ("linktype", "<u4"),
        ],
    )
    head[0] = (MAGIC_NS, 2, 4, 0, 0, snaplen, linktype)
    return head.tobytes()


def _fold(total: np.ndarray) -> np.ndarray:
    """One's-complement fold of 64-bit sums to 16 bits (RFC 1071)."""
    for _ in range(4):  # 64 -> 16 bits needs at most four folds
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _word_sum(bytes2d: np.ndarray) -> np.ndarray:
    """Sum of the big-endian 16-bit words of each row (rows of even length)."""
    return bytes2d.view(">u2").sum(axis=1, dtype=np.uint64)


def _packed_destination(local_address, family: int) -> bytes:
    """The receiver's address in network order, for the records' destination."""
    size = 4 if family == _stdsocket.AF_INET else 16
    if local_address is None:
        return bytes(size)
    text = local_address[0].split("%", 1)[0]
    try:
        host = ipaddress.ip_address(text)
    except ValueError:  # a host name: its address in this family, else in any
        host = ipaddress.ip_address(_resolve_name(text, family))
    if family == _stdsocket.AF_INET6 and host.version == 4:
        host = ipaddress.IPv6Address(f"::ffff:{host}")  # how a dual-stack socket sees it
    elif family == _stdsocket.AF_INET and host.version == 6:
        host = host.ipv4_mapped or ipaddress.IPv4Address(0)
    return host.packed


def _resolve_name(name: str, family: int) -> str:
    try:
        infos = _stdsocket.getaddrinfo(name, None, family, _stdsocket.SOCK_DGRAM)
    except _stdsocket.gaierror:
        infos = _stdsocket.getaddrinfo(name, None, 0, _stdsocket.SOCK_DGRAM)
    host = cast(str, infos[0][4][0])  # an IP sockaddr starts with the host text
    return host.split("%", 1)[0]


class PcapEncoder:
    """Turns rows of a staging area into pcap records, whole batches at a time.

    The staging area is one flat ``uint8`` array viewed per batch as
    ``[n, H + w]``: ``H`` header bytes (:func:`header_size`) in front of ``w``
    payload columns, ``w`` the longest payload of the batch rounded up to
    even (so every row is a whole number of 16-bit words for the checksum).
    When every payload has length ``w`` the view *is* the records, laid end
    to end, and is written with one call; otherwise the valid bytes are
    gathered with one boolean mask.
    """

    def __init__(self, local_address):
        if local_address is not None:
            if (
                not isinstance(local_address, tuple)
                or not 2 <= len(local_address) <= 4
                or not isinstance(local_address[0], str)
                or isinstance(local_address[1], bool)
                or not isinstance(local_address[1], int)
            ):
                raise TypeError(f"local_address must be a (host, port) tuple, not {local_address!r}")
            if not 0 <= local_address[1] <= 65535:
                raise ValueError(f"local_address port must be 0-65535, got {local_address[1]}")
        port = 0 if local_address is None else local_address[1]
        self._dport = port
        self._dst = {
            family: np.frombuffer(_packed_destination(local_address, family), np.uint8)
            for family in _HEADER_DTYPE
        }
        self._dst_words = {family: int(_word_sum(dst.reshape(1, -1))[0]) for family, dst in self._dst.items()}

    @staticmethod
    def row_width(family: int, longest: int) -> int:
        return header_size(family) + longest + (longest & 1)

    def encode(self, family, rows, lengths, truncated, addresses, ports, flowinfo, timestamps):
        """Fill the headers in ``rows`` (``uint8[n, H + w]``) and return the record bytes.

        ``rows[:, H:]`` holds the payloads; bytes past each row's length may
        be stale and are zeroed here. Returns a contiguous uint8 array.
        """
        n, width = rows.shape
        hsize = header_size(family)
        room = width - hsize
        kept = lengths.astype(np.int64)
        shortest = int(kept.min())
        uniform = shortest == int(kept.max())
        # Clear what lies past each payload: the checksum sums whole rows.
        if uniform:
            rows[:, hsize + shortest :] = 0
        else:
            rows[:, hsize:][np.arange(room) >= kept[:, None]] = 0
        # The length every header claims: one byte more for a truncated row.
        claimed = kept + truncated.astype(np.int64)
        ip_bytes = _IP_HEADER[family]
        ulen = np.minimum(claimed + 8, _MAX_LENGTH_FIELD)

        head = np.zeros(n, dtype=_HEADER_DTYPE[family])
        head["ts_sec"] = timestamps // 1_000_000_000
        head["ts_frac"] = timestamps % 1_000_000_000
        head["caplen"] = ip_bytes + 8 + kept
        head["sport"] = ports
        head["dport"] = self._dport
        head["ulen"] = ulen
        head["src"] = addresses
        head["dst"] = self._dst[family]
        payload_sum = _word_sum(rows[:, hsize:])
        src_words = _word_sum(addresses)
        # UDP checksum: pseudo-header (addresses, protocol, UDP length), the
        # UDP header with its checksum field 0, then the payload (RFC 768).
        total = (
            src_words
            + self._dst_words[family]
            + _IPPROTO_UDP
            + ulen.astype(np.uint64) * 2
            + ports.astype(np.uint64)
            + self._dport
            + payload_sum
        )
        usum = (~_fold(total)) & 0xFFFF
        head["usum"] = np.where(usum == 0, 0xFFFF, usum)  # 0 would mean "no checksum"
        if family == _stdsocket.AF_INET:
            total_length = np.minimum(claimed + 28, _MAX_LENGTH_FIELD)
            head["origlen"] = total_length
            head["ver_ihl"] = 0x45
            head["total"] = total_length
            head["frag"] = _DONT_FRAGMENT
            head["ttl"] = _TTL
            head["proto"] = _IPPROTO_UDP
            ip_words = head.view(np.uint8).reshape(n, hsize)[:, 16:36]
            head["ipsum"] = (~_fold(_word_sum(ip_words))) & 0xFFFF
        else:
            head["origlen"] = 40 + ulen
            head["vtcfl"] = (6 << 28) | (flowinfo & 0x0FFFFFFF)
            head["plen"] = ulen
            head["nxt"] = _IPPROTO_UDP
            head["hlim"] = _TTL
        rows[:, :hsize] = head.view(np.uint8).reshape(n, hsize)
        if uniform:  # every record has the same size: the rows are the records
            return rows.reshape(-1) if shortest == room else rows[:, : hsize + shortest].copy()
        return rows[np.arange(width) < (hsize + kept)[:, None]]
