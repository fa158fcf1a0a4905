"""Linux socket constants that the standard ``socket`` module does not export.

Values are the kernel's generic ABI (include/uapi/asm-generic/socket.h and
include/uapi/linux/udp.h), used by x86, arm, arm64 and riscv. The Cython
engine checks them against the C headers when it is built (see
``src/_cengine.pyx``), so a mismatch on another architecture fails its import.
"""

SO_TIMESTAMP = 29
SO_TIMESTAMPNS = 35
SO_RXQ_OVFL = 40
SO_MEMINFO = 55
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SCM_TIMESTAMP = SO_TIMESTAMP
SCM_TIMESTAMPNS = SO_TIMESTAMPNS

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104

#: Socket options after which received datagrams carry control messages.
ANCILLARY_OPTIONS = frozenset(
    {
        (1, SO_TIMESTAMP),  # SOL_SOCKET is 1 on the generic ABI
        (1, SO_TIMESTAMPNS),
        (1, SO_RXQ_OVFL),
        (SOL_UDP, UDP_GRO),
    }
)
