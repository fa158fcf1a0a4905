"""The pure-Python engine's framing loops: length-prefixed frames on a stream.

Same contract as the Cython engine's (fastnet/engines/_cengine.pyi): the caller
(fastnet/core/stream.py) checks every argument and does all waiting; these
functions never block.

Receiving: bytes are read from the kernel into a per-socket buffer in large
chunks; whole frames are copied from it into the Batch's rows; a partial
frame stays in the buffer for the next call.

Sending: rows are written with one gathered write per 512 frames
([prefix, row, prefix, row, ...], 1024 buffers, the kernel's UIO_MAXIOV).
When the kernel takes only part of the data, the frame it stopped in is
counted as sent and the rest of it is copied into the state, to be written
first by the next call: a frame is never left half-written on the wire.

System calls go through the socket's untimed twin (``state.io``, see
fastnet/engines/python/state.py): CPython polls before every call on a
socket with a timeout, even one passed MSG_DONTWAIT, and waits up to that
timeout; the twin has none, so each call returns at once.
"""

from __future__ import annotations

import socket as _stdsocket
import struct

from ...errors import with_sent

__all__ = ["FrameState", "recv_frames", "send_frames", "flush_unsent"]

#: Frames per gathered write: two buffers each, and the kernel takes at most
#: IOV_MAX (1024, its UIO_MAXIOV) buffers per call; more fail sendmsg(2)
#: with EMSGSIZE.
FRAMES_PER_WRITE = 512
#: Receive buffer allocated at first use; it grows only for a frame longer.
RECV_BUFFER = 256 * 1024

_DONTWAIT = _stdsocket.MSG_DONTWAIT
# MSG_NOSIGNAL: a write to a connection the peer has closed raises EPIPE
# (BrokenPipeError) instead of killing the process with SIGPIPE.
_SEND_FLAGS = _stdsocket.MSG_DONTWAIT | getattr(_stdsocket, "MSG_NOSIGNAL", 0)
_PREFIX_FORMATS = {2: "H", 4: "I", 8: "Q"}


class FrameState:
    """Per-socket framing state: receive buffer, the unsent tail of a frame, settings."""

    __slots__ = (
        "prefix_size",
        "little_endian",
        "max_frame",
        "truncate",
        "eof",
        "blocked_length",
        "pending_error",
        "peer",
        "recv_busy",
        "send_busy",
        "_buf",
        "_view",
        "_start",
        "_end",
        "_tail",
        "_tail_pos",
        "_unpack",
        "_pack",
    )

    def __init__(self):
        self.eof = False
        self.blocked_length = None
        self.pending_error = None
        self.peer = None
        self.recv_busy = False
        self.send_busy = False
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._tail = b""
        self._tail_pos = 0
        self.configure(4, False, 16 * 2**20, False)

    def configure(self, prefix_size, little_endian, max_frame, truncate):
        """Set the framing; bytes already buffered are parsed with the new one."""
        if prefix_size not in _PREFIX_FORMATS or not 0 <= max_frame <= 2**62:
            raise ValueError("bad framing settings")
        self.prefix_size = prefix_size
        self.little_endian = bool(little_endian)
        self.max_frame = max_frame
        self.truncate = bool(truncate)
        layout = struct.Struct(("<" if little_endian else ">") + _PREFIX_FORMATS[prefix_size])
        self._unpack = layout.unpack_from
        self._pack = layout.pack

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return self._end - self._start

    @property
    def unsent(self) -> int:
        """Bytes of a partly written frame still to be written."""
        return len(self._tail) - self._tail_pos

    def peek(self, nbytes):
        """The first ``nbytes`` (at most) of the buffered bytes, not consumed."""
        return bytes(self._view[self._start : min(self._end, self._start + max(nbytes, 0))])

    def _make_room(self, need):
        """Room for ``need`` bytes from the buffer's start; moves unparsed bytes to the front.

        Called only before any frame of the current call was taken, so the
        bytes it moves were never handed out.
        """
        start, end, cap = self._start, self._end, len(self._buf)
        avail = end - start
        if not avail:
            self._start = self._end = start = end = 0
        if cap < need or cap == 0:
            size = max(need, RECV_BUFFER, min(2 * cap, self.prefix_size + self.max_frame))
            grown = bytearray(size)
            grown[:avail] = self._view[start:end]
            self._view.release()
            self._buf = grown
            self._view = memoryview(grown)
        elif start and (cap - start < need or cap - end < cap >> 2):
            self._view[:avail] = self._view[start:end]
        else:
            return
        self._start, self._end = 0, avail


def _reader(state):
    """read(view) -> bytes, never blocking and never polling (see state.py, _untimed_twin)."""
    recv_into = state.io.recv_into
    return lambda view: recv_into(view, 0, _DONTWAIT)


def _writer(state):
    """write(buffers) -> bytes, never blocking and never polling."""
    sendmsg = state.io.sendmsg
    return lambda buffers: sendmsg(buffers, (), _SEND_FLAGS)


def recv_frames(state, batch, st):
    if not isinstance(st, FrameState):
        raise TypeError(f"recv_frames needs a FrameState, not {type(st).__name__}")
    rows = batch._rows
    slot = batch._slot_size
    capacity = batch._capacity
    prefix = st.prefix_size
    unpack = st._unpack
    max_frame = st.max_frame
    truncate = st.truncate
    read = _reader(state)
    lengths = []
    cut = []
    n = 0
    start = st._start
    st.blocked_length = None
    drained = False
    failed = False
    try:
        while True:
            view = st._view
            end = st._end
            need = prefix
            while n < capacity:
                avail = end - start
                if avail < prefix:
                    need = prefix
                    break
                (size,) = unpack(view, start)
                if size > max_frame or (size > slot and not truncate):
                    st.blocked_length = size
                    return n
                need = prefix + size
                if avail < need:
                    break
                body = start + prefix
                if size <= slot:
                    rows[n][:size] = view[body : body + size]
                    lengths.append(size)
                else:
                    rows[n][:] = view[body : body + slot]
                    lengths.append(slot)
                    cut.append(n)
                start += need
                n += 1
            if n == capacity or st.eof or drained:
                return n
            space = len(st._buf) - end
            if n:
                # Frames are taken: return them rather than move bytes
                # under them, unless a good chunk still fits.
                if space < max(need - (end - start), len(st._buf) >> 2):
                    return n
            else:
                st._make_room(need)
                start = st._start
                view = st._view
                end = st._end
                space = len(st._buf) - end
            try:
                got = read(view[end:])
            except BlockingIOError:
                return n
            except OSError as exc:
                if n:
                    st.pending_error = exc  # raised by the next call
                    return n
                raise
            if got == 0:
                st.eof = True
                return n
            st._end = end + got
            drained = got < space
    except BaseException:
        failed = True
        raise
    finally:
        # Consume the frames only when they are handed out: an exception
        # (Ctrl-C during a read) leaves them buffered for the next call.
        if n and not failed and len(lengths) == n:
            st._start = start
            batch._lengths[:n] = lengths
            flags = batch._truncated_u8
            flags[:n] = 0
            for i in cut:
                flags[i] = 1


def send_frames(state, batch, start, stop, st):
    if not isinstance(st, FrameState):
        raise TypeError(f"send_frames needs a FrameState, not {type(st).__name__}")
    if not 0 <= start <= stop <= batch._capacity:
        raise ValueError(f"rows {start}..{stop} out of range for capacity {batch._capacity}")
    if st._tail:  # the caller flushes first; never write past a held tail
        return 0
    rows = batch._rows
    # Read once: only these lengths are written, whatever another thread
    # writes to the array meanwhile.
    lengths = batch._lengths[start:stop].tolist()
    if lengths and not 0 <= min(lengths) <= max(lengths) <= batch._slot_size:
        raise ValueError(
            f"batch.lengths[{start}:{stop}] changed while send_frames was "
            f"running (outside 0..{batch._slot_size})"
        )
    prefix = st.prefix_size
    pack = st._pack
    write = _writer(state)
    total = len(lengths)
    done = 0
    while done < total:
        chunk_end = min(total, done + FRAMES_PER_WRITE)
        buffers: list[bytes | memoryview] = []  # prefix, payload, prefix, ...
        append = buffers.append
        for i in range(done, chunk_end):
            size = lengths[i]
            append(pack(size))
            append(rows[start + i][:size])
        try:
            put = write(buffers)
        except BlockingIOError:
            return done
        except OSError as exc:
            if done:
                with_sent(exc, done)
            raise
        first = done
        while done < chunk_end:
            frame = prefix + lengths[done]
            if put < frame:
                break
            put -= frame
            done += 1
        if done < chunk_end:
            if put:  # stopped inside frame `done`: keep the rest of it
                k = 2 * (done - first)
                st._tail = (bytes(buffers[k]) + bytes(buffers[k + 1]))[put:]
                st._tail_pos = 0
                done += 1
            return done
    return done


def flush_unsent(state, st):
    if not isinstance(st, FrameState):
        raise TypeError(f"flush_unsent needs a FrameState, not {type(st).__name__}")
    tail = st._tail
    if not tail:
        return 0
    send = state.io.send
    write = lambda view: send(view, _SEND_FLAGS)  # noqa: E731
    view = memoryview(tail)
    while st._tail_pos < len(tail):
        try:
            st._tail_pos += write(view[st._tail_pos :])
        except BlockingIOError:
            break
    left = len(tail) - st._tail_pos
    if not left:
        st._tail = b""
        st._tail_pos = 0
    return left
