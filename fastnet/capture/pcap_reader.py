"""Parsing classic pcap files into Batches of UDP datagrams.

Records vary in length, so the walk from one record to the next is a Python
loop (about a microsecond per record); the Batch arrays are then filled a
batch at a time. The file is memory-mapped, so files larger than memory are
fine and nothing is read twice.

Accepted: both byte orders, µs (0xa1b2c3d4) and ns (0xa1b23c4d) magics, and
the link types below holding IPv4 or IPv6. A packet that is not UDP, an IP
fragment (its UDP header, or the rest of its payload, is in another packet),
or cut by the capture's snap length before the end of its UDP header, is
skipped and counted by reason. A UDP payload cut by the snap length is kept
as a truncated row, exactly like a datagram cut by a receiver's slot.
"""

from __future__ import annotations

import mmap
import os
import socket as _stdsocket
import struct

import numpy as np

from ..errors import CaptureError
from .pcap import SNAPLEN

__all__ = ["iter_pcap", "LINK_TYPES"]

_AF_INET = _stdsocket.AF_INET
_AF_INET6 = _stdsocket.AF_INET6

# link type -> (bytes before the network header, offset of a 2-byte
# EtherType in it, or None when the IP version nibble decides).
LINK_TYPES = {
    0: ("NULL", 4, None),  # BSD loopback: 4-byte address family in host order
    1: ("ETHERNET", 14, 12),
    12: ("RAW", 0, None),  # DLT_RAW as some systems number it
    14: ("RAW", 0, None),
    101: ("RAW", 0, None),
    108: ("LOOP", 4, None),  # OpenBSD loopback
    113: ("LINUX_SLL", 16, 14),
    228: ("IPV4", 0, None),
    229: ("IPV6", 0, None),
    276: ("LINUX_SLL2", 20, 0),
}
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_UDP = 17
_MAX_EXTENSIONS = 8


def _network_offset(mm, start, end, link):
    """Offset of the IP header in a record, or None when it is not IP."""
    _, skip, ethertype_at = link
    if ethertype_at is None:
        return start + skip if start + skip < end else None
    if start + skip > end:
        return None
    ethertype = int.from_bytes(mm[start + ethertype_at : start + ethertype_at + 2], "big")
    offset = start + skip
    if skip == 14:  # Ethernet: step over up to two VLAN tags
        for _ in range(2):
            if ethertype not in _VLAN_TAGS or offset + 4 > end:
                break
            ethertype = int.from_bytes(mm[offset + 2 : offset + 4], "big")
            offset += 4
    if ethertype not in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6):
        return None
    return offset


def _udp_of(mm, ip, end):
    """(family, source bytes, udp offset, end of IP packet) or a skip reason string."""
    version = mm[ip] >> 4
    if version == 4:
        if ip + 20 > end:
            return "cut before the UDP header"
        ihl = (mm[ip] & 0x0F) * 4
        total = int.from_bytes(mm[ip + 2 : ip + 4], "big")
        if ihl < 20 or total < ihl:
            return "malformed IP header"
        if mm[ip + 9] != _UDP:
            return "not UDP"
        if int.from_bytes(mm[ip + 6 : ip + 8], "big") & 0x3FFF:  # MF flag or an offset
            return "IP fragment"
        return _AF_INET, mm[ip + 12 : ip + 16], ip + ihl, ip + total
    if version == 6:
        if ip + 40 > end:
            return "cut before the UDP header"
        payload = int.from_bytes(mm[ip + 4 : ip + 6], "big")
        if payload == 0:
            return "IPv6 jumbogram"
        next_header = mm[ip + 6]
        offset = ip + 40
        for _ in range(_MAX_EXTENSIONS):
            if next_header in _IPV6_EXTENSIONS:
                if offset + 2 > end:
                    return "cut before the UDP header"
                next_header, offset = mm[offset], offset + (mm[offset + 1] + 1) * 8
            elif next_header == _IPV6_FRAGMENT:
                if offset + 8 > end:
                    return "cut before the UDP header"
                if int.from_bytes(mm[offset + 2 : offset + 4], "big") & 0xFFF9:  # offset or M
                    return "IP fragment"
                next_header, offset = mm[offset], offset + 8
            else:
                break
        if next_header != _UDP:
            return "not UDP"
        return _AF_INET6, mm[ip + 8 : ip + 24], offset, ip + 40 + payload
    return "not IP"


class _Pending:
    """Datagrams parsed but not yet handed out, all of one family."""

    def __init__(self):
        self.clear(None)

    def clear(self, family):
        self.family = family
        self.stamps, self.sources, self.ports = [], [], []
        self.offsets, self.kept, self.truncated = [], [], []

    def __len__(self):
        return len(self.stamps)

    def batch(self, data, slot_size):
        from ..core.batch import Batch

        n = len(self.stamps)
        kept = np.array(self.kept, dtype=np.int64)
        slot = slot_size or max(1, int(kept.max()))
        batch = Batch(n, slot, family=self.family)
        rows = batch.data
        for i, (offset, size) in enumerate(zip(self.offsets, np.minimum(kept, slot).tolist(), strict=True)):
            rows[i, :size] = data[offset : offset + size]
        batch.lengths[:] = np.minimum(kept, slot)
        batch.truncated[:] = np.array(self.truncated, dtype=bool) | (kept > slot)
        batch.addresses[:] = np.frombuffer(b"".join(self.sources), np.uint8).reshape(n, -1)
        batch.ports[:] = self.ports
        batch.timestamps[:] = self.stamps
        batch.count = n
        return batch


def _file_header(mm, path):
    magic = mm[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanoseconds = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack_from(order + "HHiIII", mm, 4)
    if major != 2:
        raise CaptureError(f"{path}: pcap version {major} is not supported (only 2.x)", 4)
    # The top bits of the link type field carry FCS information (pcap-savefile(5)).
    link = LINK_TYPES.get(linktype & 0x03FFFFFF)
    if link is None:
        names = sorted({name for name, _, _ in LINK_TYPES.values()})
        raise CaptureError(
            f"{path}: pcap link type {linktype & 0x03FFFFFF} is not supported ({', '.join(names)} are)", 20
        )
    return struct.Struct(order + "IIII"), (1 if nanoseconds else 1000), max(snaplen, SNAPLEN), link


def iter_pcap(path, handle, batch_size, slot_size, skip_reasons):
    """Yield Batches of the UDP datagrams in a pcap file; count skipped packets."""
    size = os.fstat(handle.fileno()).st_size
    if size < 24:
        raise CaptureError(f"{path}: pcap file header cut short ({size} of 24 bytes)", size)
    mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    data = np.frombuffer(mm, dtype=np.uint8)
    try:
        record, tick, max_caplen, link = _file_header(mm, path)
        pending = _Pending()
        error = None
        offset = 24
        while offset < size:
            if offset + 16 > size:
                error = CaptureError(
                    f"{path}: record header cut short at byte {offset} ({size - offset} of 16 bytes)", offset
                )
                break
            seconds, fraction, caplen, _origlen = record.unpack_from(mm, offset)
            if caplen > max_caplen:
                error = CaptureError(
                    f"{path}: corrupt record at byte {offset}: it claims "
                    f"{caplen} bytes (at most {max_caplen})",
                    offset,
                )
                break
            start, end = offset + 16, offset + 16 + caplen
            if end > size:
                error = CaptureError(
                    f"{path}: record at byte {offset} cut short: {caplen} bytes "
                    f"claimed, the file ends after {size - start}",
                    offset,
                )
                break
            offset = end
            ip = _network_offset(mm, start, end, link)
            found = "not IP" if ip is None else _udp_of(mm, ip, end)
            if isinstance(found, str):
                skip_reasons[found] += 1
                continue
            family, source, udp, ip_end = found
            if udp + 8 > end:
                skip_reasons["cut before the UDP header"] += 1
                continue
            claimed = int.from_bytes(mm[udp + 4 : udp + 6], "big") - 8
            if claimed < 0 or udp + 8 + claimed > ip_end:
                skip_reasons["malformed UDP header"] += 1
                continue
            kept = min(claimed, end - udp - 8)
            if family != pending.family or len(pending) == batch_size:
                if len(pending):
                    yield pending.batch(data, slot_size)
                pending.clear(family)
            pending.stamps.append(seconds * 1_000_000_000 + fraction * tick)
            pending.sources.append(source)
            pending.ports.append(int.from_bytes(mm[udp : udp + 2], "big"))
            pending.offsets.append(udp + 8)
            pending.kept.append(kept)
            pending.truncated.append(kept < claimed)
        if len(pending):
            yield pending.batch(data, slot_size)
        if error is not None:
            raise error
    finally:
        del data
        try:
            mm.close()
        except BufferError:
            # An exception on its way out still holds a view of the map in
            # its traceback: the map is unmapped when that view is freed.
            pass
