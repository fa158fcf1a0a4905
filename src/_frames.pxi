# Frame placement: datagrams put into instrument frames by their header fields.
#
# Pairs with fastnet/engines/python/frames.py; the interface is FramePlacer in
# fastnet/engines/_cengine.pyi. The checks are made once, in Python, by
# fastnet.FrameSpec: by the time a FramePlacer exists every field is 1 to 8
# bytes and every count is in range.
#
# The work is frame_place_rows(), a C function that takes no Python object and
# never needs the GIL: row pointers, lengths, truncation flags and
# timestamps, and a count. Headers are read in place from each row, and each
# accepted payload is copied once, by one memcpy, from its row into its
# frame. A capture loop can call it on the rows it has just received.
#
# Borrowing (place(..., borrow=True)): a caller that keeps the rows unchanged
# until its next call (a Receiver's ring window stays put until the next
# get()) lets a frame whose packets 0..ppf-1 sit in rows r..r+ppf-1 of one
# call be handed out as a view on those rows, with no copy at all. The copy
# is only put off: a frame still in flight when the call ends, an evicted
# incomplete one, or a packet in any other row first copies the packets the
# view holds into the frame's own buffer (_frame_unview), so every other
# rule, duplicates' first copy kept included, is unchanged.

from libc.stdlib cimport realloc
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE

# The fields take_frames sets (contract.FRAME_FIELDS) and the check of the class
# it is given: one statement of both for both engines.
from fastnet.engines.contract import frame_slot_descriptors

cdef extern from "fastnet_compat.h" nogil:
    uint64_t fastnet_read_field(const uint8_t *p, int size, int big, Py_ssize_t avail)
    void __builtin_prefetch(const void *p)

cdef enum:
    FRAME_MAX_TERMS = 8  # fastnet.frames.field.MAX_TERMS
    FRAME_COUNTER = 0  # fastnet.frames.spec.COUNTER, INDEX, OFFSET
    FRAME_INDEX = 1
    FRAME_OFFSET = 2
    SLOT_FREE = 0
    SLOT_IN_FLIGHT = 1
    SLOT_EMITTED = 2  # in the emitted queue
    SLOT_HANDED_OUT = 3  # taken by take_emitted, until released

ctypedef struct FrameTerm:
    Py_ssize_t offset
    int size
    int big
    uint64_t mask
    int shift
    uint64_t scale

ctypedef struct FrameSum:
    int nterms
    FrameTerm terms[FRAME_MAX_TERMS]

ctypedef struct FrameSlot:
    uint64_t frame_id
    uint8_t *data  # packets_per_frame x payload_size bytes
    uint8_t *present  # packets_per_frame flags
    Py_ssize_t count  # flags set
    int64_t first_ts
    int64_t last_ts
    int64_t begun_ns  # CLOCK_MONOTONIC when its first packet was placed (for max_frame_age)
    int state  # SLOT_FREE, SLOT_IN_FLIGHT, SLOT_EMITTED or SLOT_HANDED_OUT
    # Borrowed (see the top): packet k is in the row at view + k * row_stride,
    # which is row view_row of the array place() was given; NULL when the
    # packets are in data.
    const uint8_t *view
    Py_ssize_t view_row
    # The first packet's source, as the Batch stored it (Frame.source
    # formats it only when asked): kept here as the frame begins, so the
    # consumer does no per-batch work for it.
    uint8_t source_address[16]  # the first `width` bytes of the row's address, then zeros
    uint16_t source_family
    uint16_t source_port
    uint32_t source_flowinfo
    uint32_t source_scope_id

# The sources of the rows being placed (a Batch's address arrays, from the
# first row placed); addresses == NULL: no sources, kept as zeros.
ctypedef struct FrameRowSources:
    const uint8_t *addresses  # row i's address at addresses + i * width
    Py_ssize_t width  # 4 or 16
    const uint16_t *ports
    const uint32_t *flowinfo
    const uint32_t *scope_ids
    uint16_t family

ctypedef struct FrameCore:
    Py_ssize_t payload_offset
    Py_ssize_t payload_size
    Py_ssize_t ppf  # packets per frame
    Py_ssize_t packet_size  # -1: any length that holds min_length
    Py_ssize_t min_length
    int fill
    int mode
    FrameSum first  # counter, or frame_id
    FrameSum second  # index or offset
    uint64_t window  # frames in flight
    # CLOCK_MONOTONIC reading of the rows being placed, set by the caller of
    # frame_place_rows (one reading per call, not per datagram): rows carry
    # kernel timestamps only when those are on. clock_gettime(2): "It does
    # not include time during which the system is suspended", so a frame
    # does not age while the machine sleeps.
    int64_t now_ns
    FrameSlot *slots
    Py_ssize_t nslots
    # Set by place() for one call: borrow or copy, the rows' stride, and the
    # index in its array of the call's first row.
    int borrow
    Py_ssize_t row_stride
    Py_ssize_t row0
    Py_ssize_t *viewed  # slots begun borrowed in this call (nviewed <= nslots)
    Py_ssize_t nviewed
    Py_ssize_t *free_list
    Py_ssize_t nfree
    Py_ssize_t *in_flight  # [window]: slot of frame id (id % window), or -1
    Py_ssize_t *emitted  # slots emitted, in order, until taken
    Py_ssize_t nemitted
    # Frame ids below base are late. ended: base has passed 2**64 - 1 (the
    # last possible id was emitted), so every packet is late.
    uint64_t base
    int ended
    uint64_t last_emitted
    int have_emitted
    uint64_t placed, late, duplicate, rejected
    uint64_t frames_complete, frames_incomplete, frames_missing


cdef inline uint64_t _frame_sum(const uint8_t *row, int64_t length, const FrameSum *s) noexcept nogil:
    # Sums wrap modulo 2**64, as fastnet.LinearField documents. The caller
    # checked length >= min_length, so each field lies inside the datagram.
    cdef uint64_t total = 0, value
    cdef int t
    cdef const FrameTerm *term
    for t in range(s.nterms):
        term = &s.terms[t]
        value = fastnet_read_field(row + term.offset, term.size, term.big, length - term.offset)
        total += term.scale * ((value >> term.shift) & term.mask)
    return total


cdef void _frame_unview(FrameCore *c, FrameSlot *slot) noexcept nogil:
    """Copy a borrowed frame's packets from their rows into its own buffer (still unchanged rows)."""
    cdef Py_ssize_t k
    if slot.view == NULL:
        return
    for k in range(c.ppf):
        if slot.present[k]:
            memcpy(slot.data + k * c.payload_size, slot.view + k * c.row_stride + c.payload_offset,
                   c.payload_size)
    slot.view = NULL


cdef void _frame_unview_in_flight(FrameCore *c) noexcept nogil:
    """At the end of a call: the frames begun borrowed that are still in flight get their copies."""
    cdef Py_ssize_t j
    cdef FrameSlot *slot
    for j in range(c.nviewed):
        slot = &c.slots[c.viewed[j]]
        if slot.state == SLOT_IN_FLIGHT:
            _frame_unview(c, slot)
    c.nviewed = 0


cdef void _frame_emit(FrameCore *c, Py_ssize_t s) noexcept nogil:
    cdef FrameSlot *slot = &c.slots[s]
    cdef Py_ssize_t r
    c.in_flight[slot.frame_id % c.window] = -1
    if slot.count == c.ppf:
        c.frames_complete += 1
    else:
        c.frames_incomplete += 1
        _frame_unview(c, slot)  # only a complete frame is handed out as a view
        # Missing rows get the fill value now, not when the frame began, so
        # a complete frame's bytes are written once, by the payload copies.
        for r in range(c.ppf):
            if not slot.present[r]:
                memset(slot.data + r * c.payload_size, c.fill, c.payload_size)
    if c.have_emitted:
        c.frames_missing += slot.frame_id - c.last_emitted - 1
    c.last_emitted = slot.frame_id
    c.have_emitted = 1
    slot.state = SLOT_EMITTED
    c.emitted[c.nemitted] = s
    c.nemitted += 1


cdef Py_ssize_t _frame_oldest(FrameCore *c) noexcept nogil:
    """The slot of the oldest frame in flight, or -1."""
    cdef uint64_t k, s
    for k in range(c.window):
        if k > <uint64_t>0xFFFFFFFFFFFFFFFF - c.base:  # base + k would wrap
            break
        s = c.in_flight[(c.base + k) % c.window]
        if <Py_ssize_t>s >= 0:
            return <Py_ssize_t>s
    return -1


cdef void _frame_cascade(FrameCore *c) noexcept nogil:
    """Emit the oldest frames in flight while they are complete."""
    cdef Py_ssize_t s
    cdef uint64_t fid
    while True:
        s = _frame_oldest(c)
        if s < 0 or c.slots[s].count != c.ppf:
            return
        fid = c.slots[s].frame_id
        _frame_emit(c, s)
        if fid == <uint64_t>0xFFFFFFFFFFFFFFFF:
            c.ended = 1
            return
        c.base = fid + 1


cdef void _frame_advance(FrameCore *c, uint64_t new_base) noexcept nogil:
    """Evict every frame in flight below new_base (in order), then move the window there."""
    cdef uint64_t k
    cdef Py_ssize_t s
    k = 0
    while k < c.window and k < new_base - c.base:
        s = c.in_flight[(c.base + k) % c.window]
        if s >= 0:
            _frame_emit(c, s)
        k += 1
    c.base = new_base
    _frame_cascade(c)


cdef inline void _frame_keep_source(FrameSlot *slot, const FrameRowSources *src, Py_ssize_t i) noexcept nogil:
    memset(slot.source_address, 0, sizeof(slot.source_address))
    if src == NULL or src.addresses == NULL:
        slot.source_family = 0
        slot.source_port = 0
        slot.source_flowinfo = 0
        slot.source_scope_id = 0
        return
    memcpy(slot.source_address, src.addresses + i * src.width, <size_t>src.width)
    slot.source_family = src.family
    slot.source_port = src.ports[i]
    slot.source_flowinfo = src.flowinfo[i]
    slot.source_scope_id = src.scope_ids[i]


cdef Py_ssize_t frame_place_rows(FrameCore *c, const uint8_t **rows, const int64_t *lengths,
                                 const uint8_t *truncated, const int64_t *timestamps,
                                 const FrameRowSources *sources, Py_ssize_t n) noexcept nogil:
    """Place rows 0..n-1; return how many were taken (fewer than n when no slot is free).

    ``truncated``, ``timestamps`` and ``sources`` may be NULL (sources: see
    FrameRowSources; width at most 16). Frames completed or evicted go to
    c.emitted; their slots stay out of the free list until the caller
    releases them. A frame begun keeps its first packet's source. A row not
    taken has changed nothing but, perhaps, evicted frames (which a retry
    does not evict again). With c.borrow, complete frames emitted may still
    be views on these rows (slot.view); every frame left in flight is not.
    """
    cdef Py_ssize_t i, s, idx
    cdef int64_t length
    cdef uint64_t value, second, fid
    cdef const uint8_t *row
    cdef FrameSlot *slot
    for i in range(n):
        row = rows[i]
        # Rows are a slot apart (8 KB and more for large payloads), a stride
        # the hardware prefetcher does not follow across pages: ask for the
        # header eight rows on, so its cache miss overlaps this row's work.
        if i + 8 < n:
            __builtin_prefetch(rows[i + 8])
        length = lengths[i]
        # A field is read only from a row at least min_length long (the
        # largest field end and the payload end), so never past the datagram.
        if ((truncated != NULL and truncated[i]) or length < c.min_length
                or (c.packet_size >= 0 and length != c.packet_size)):
            c.rejected += 1
            continue
        value = _frame_sum(row, length, &c.first)
        if c.mode == FRAME_COUNTER:
            fid = value // <uint64_t>c.ppf
            idx = <Py_ssize_t>(value % <uint64_t>c.ppf)
        else:
            second = _frame_sum(row, length, &c.second)
            if c.mode == FRAME_INDEX:
                if second >= <uint64_t>c.ppf:
                    c.rejected += 1
                    continue
                idx = <Py_ssize_t>second
            else:
                if second % <uint64_t>c.payload_size or second // <uint64_t>c.payload_size >= <uint64_t>c.ppf:
                    c.rejected += 1
                    continue
                idx = <Py_ssize_t>(second // <uint64_t>c.payload_size)
            fid = value
        if c.ended or fid < c.base:
            c.late += 1
            continue
        if fid - c.base >= c.window:
            _frame_advance(c, fid - c.window + 1)
        s = c.in_flight[fid % c.window]
        if s < 0:
            if c.nfree == 0:  # the caller makes room
                _frame_unview_in_flight(c)
                return i
            c.nfree -= 1
            s = c.free_list[c.nfree]
            slot = &c.slots[s]
            slot.frame_id = fid
            slot.count = 0
            slot.begun_ns = c.now_ns
            slot.state = SLOT_IN_FLIGHT
            memset(slot.present, 0, c.ppf)
            _frame_keep_source(slot, sources, i)
            c.in_flight[fid % c.window] = s
            slot.view = NULL
            if c.borrow and idx == 0:  # packet k is expected k rows on
                slot.view = row
                slot.view_row = c.row0 + i
                c.viewed[c.nviewed] = s
                c.nviewed += 1
        slot = &c.slots[s]
        if slot.present[idx]:
            c.duplicate += 1  # the first copy is kept
            continue
        if slot.view != NULL and row != slot.view + idx * c.row_stride:
            _frame_unview(c, slot)
        if slot.view == NULL:
            memcpy(slot.data + idx * c.payload_size, row + c.payload_offset, c.payload_size)
        slot.present[idx] = 1
        slot.count += 1
        c.placed += 1
        if slot.count == 1:
            slot.first_ts = timestamps[i] if timestamps != NULL else 0
        slot.last_ts = timestamps[i] if timestamps != NULL else 0
        if slot.count == c.ppf:
            _frame_cascade(c)
    _frame_unview_in_flight(c)
    return n


cdef void frame_flush(FrameCore *c) noexcept nogil:
    """Emit every frame in flight, oldest first."""
    cdef uint64_t k
    cdef Py_ssize_t s
    for k in range(c.window):
        if k > <uint64_t>0xFFFFFFFFFFFFFFFF - c.base:
            break
        s = c.in_flight[(c.base + k) % c.window]
        if s >= 0:
            _frame_emit(c, s)
    if c.have_emitted:
        if c.last_emitted == <uint64_t>0xFFFFFFFFFFFFFFFF:
            c.ended = 1
        elif c.last_emitted + 1 > c.base:
            c.base = c.last_emitted + 1


cdef void frame_evict_begun_before(FrameCore *c, int64_t cutoff_ns) noexcept nogil:
    """Evict the frames in flight up to the newest one begun before cutoff_ns, oldest first.

    Frames older (by id) than an aged one go with it, so frames still come
    out in increasing id order; the window then starts after it.
    """
    cdef uint64_t k, target = 0
    cdef Py_ssize_t s
    cdef int found = 0
    for k in range(c.window):
        if k > <uint64_t>0xFFFFFFFFFFFFFFFF - c.base:
            break
        s = c.in_flight[(c.base + k) % c.window]
        if s >= 0 and c.slots[s].begun_ns < cutoff_ns:
            target = c.base + k
            found = 1
    if not found:
        return
    if target == <uint64_t>0xFFFFFFFFFFFFFFFF:
        frame_flush(c)  # every frame in flight is at or below the last possible id
    else:
        _frame_advance(c, target + 1)


cdef int64_t frame_oldest_begun(FrameCore *c) noexcept nogil:
    """The earliest begun_ns of the frames in flight, or -1 when none is."""
    cdef uint64_t k
    cdef Py_ssize_t s
    cdef int64_t oldest = -1
    for k in range(c.window):
        if k > <uint64_t>0xFFFFFFFFFFFFFFFF - c.base:
            break
        s = c.in_flight[(c.base + k) % c.window]
        if s >= 0 and (oldest < 0 or c.slots[s].begun_ns < oldest):
            oldest = c.slots[s].begun_ns
    return oldest


cdef int _frame_sum_from(FrameSum *s, object terms) except -1:
    cdef int t = 0
    for offset, size, big, mask, shift, scale in terms:
        if t >= FRAME_MAX_TERMS:
            raise ValueError(f"at most {FRAME_MAX_TERMS} terms")
        if not 1 <= size <= 8 or not 0 <= shift < 8 * size or offset < 0:
            raise ValueError("a field must be 1 to 8 bytes at a non-negative offset")
        s.terms[t].offset = offset
        s.terms[t].size = size
        s.terms[t].big = 1 if big else 0
        s.terms[t].mask = mask
        s.terms[t].shift = shift
        s.terms[t].scale = scale
        t += 1
    s.nterms = t
    return 0


cdef Py_ssize_t _frame_sum_end(FrameSum *s) noexcept:
    cdef Py_ssize_t end = 0
    cdef int t
    for t in range(s.nterms):
        end = max(end, s.terms[t].offset + s.terms[t].size)
    return end


cdef tuple _NO_ARGS = ()


cdef class FramePlacer:
    """The Cython engine's frame placement (see fastnet/engines/_cengine.pyi)."""

    cdef FrameCore core
    cdef list _buffers  # the arrays the slots point into, kept alive
    cdef const uint8_t **_rows  # row pointers of the batch being placed
    cdef Py_ssize_t _rows_capacity
    cdef type _frame_type  # the class take_frames made frames of last, and its slots' descriptors
    cdef tuple _frame_slots
    cdef object _borrowed  # the rows array of the last place(borrow=True), which views slice

    def __cinit__(self):
        memset(&self.core, 0, sizeof(FrameCore))
        self._rows = NULL
        self._rows_capacity = 0

    def __init__(self, Py_ssize_t payload_offset, Py_ssize_t payload_size, Py_ssize_t packets_per_frame,
                 Py_ssize_t packet_size, int fill, int mode, first_terms, second_terms,
                 Py_ssize_t frames_in_flight):
        cdef Py_ssize_t j
        if (payload_offset < 0 or payload_size < 1 or packets_per_frame < 1
                or not 1 <= frames_in_flight <= (1 << 20) or not 0 <= fill <= 255
                or mode not in (FRAME_COUNTER, FRAME_INDEX, FRAME_OFFSET)):
            raise ValueError("FramePlacer: a value is out of range (fastnet.FrameSpec checks them)")
        if self.core.in_flight != NULL:
            raise RuntimeError("FramePlacer is already initialised")
        cdef FrameCore *c = &self.core
        c.payload_offset = payload_offset
        c.payload_size = payload_size
        c.ppf = packets_per_frame
        c.packet_size = packet_size
        c.fill = fill
        c.mode = mode
        _frame_sum_from(&c.first, first_terms)
        _frame_sum_from(&c.second, second_terms)
        if c.first.nterms == 0 or (mode != FRAME_COUNTER and c.second.nterms == 0):
            raise ValueError("FramePlacer: a placement field is missing")
        c.min_length = max(payload_offset + payload_size, _frame_sum_end(&c.first), _frame_sum_end(&c.second))
        if packet_size >= 0 and packet_size < c.min_length:
            raise ValueError("FramePlacer: packet_size does not hold the payload and fields")
        c.window = <uint64_t>frames_in_flight
        c.in_flight = <Py_ssize_t *>malloc(frames_in_flight * sizeof(Py_ssize_t))
        if c.in_flight == NULL:
            raise MemoryError()
        for j in range(frames_in_flight):
            c.in_flight[j] = -1
        self._buffers = []

    def __dealloc__(self):
        free(self.core.slots)
        free(self.core.free_list)
        free(self.core.in_flight)
        free(self.core.emitted)
        free(self.core.viewed)
        free(self._rows)

    cdef void _settle_views(self) noexcept:
        """Copy the emitted frames still borrowing rows into their buffers; forget the rows.

        For any call after the one that borrowed, but take_frames: the
        caller kept the rows unchanged only until then.
        """
        cdef Py_ssize_t j
        for j in range(self.core.nemitted):
            _frame_unview(&self.core, &self.core.slots[self.core.emitted[j]])
        self._borrowed = None

    def add_slots(self, unsigned char[:, :, ::1] data not None, unsigned char[:, ::1] present not None):
        """Add data.shape[0] frame slots, backed by these arrays (kept alive here)."""
        cdef Py_ssize_t k = data.shape[0], j, total
        cdef FrameCore *c = &self.core
        if c.in_flight == NULL:
            raise RuntimeError("FramePlacer is not initialised")
        if data.shape[1] != c.ppf or data.shape[2] != c.payload_size or present.shape[0] != k \
                or present.shape[1] != c.ppf:
            raise ValueError("add_slots: arrays of the wrong shape")
        if k == 0:
            return
        total = c.nslots + k
        slots = <FrameSlot *>realloc(c.slots, total * sizeof(FrameSlot))
        if slots == NULL:
            raise MemoryError()
        c.slots = slots
        free_list = <Py_ssize_t *>realloc(c.free_list, total * sizeof(Py_ssize_t))
        if free_list == NULL:
            raise MemoryError()
        c.free_list = free_list
        emitted = <Py_ssize_t *>realloc(c.emitted, total * sizeof(Py_ssize_t))
        if emitted == NULL:
            raise MemoryError()
        c.emitted = emitted
        viewed = <Py_ssize_t *>realloc(c.viewed, total * sizeof(Py_ssize_t))
        if viewed == NULL:
            raise MemoryError()
        c.viewed = viewed
        for j in range(k):
            c.slots[c.nslots + j].data = &data[j, 0, 0]
            c.slots[c.nslots + j].present = &present[j, 0]
            c.slots[c.nslots + j].count = 0
            c.slots[c.nslots + j].state = SLOT_FREE
            c.slots[c.nslots + j].view = NULL
            _frame_keep_source(&c.slots[c.nslots + j], NULL, 0)
            c.free_list[c.nfree] = c.nslots + j
            c.nfree += 1
        c.nslots = total
        self._buffers.append((data, present))

    def place(self, const unsigned char[:, ::1] data not None, const int64_t[::1] lengths not None,
              const unsigned char[::1] truncated not None, const int64_t[::1] timestamps not None,
              Py_ssize_t start, Py_ssize_t stop, *, int family=0,
              const unsigned char[:, ::1] addresses=None, const uint16_t[::1] ports=None,
              const uint32_t[::1] flowinfo=None, const uint32_t[::1] scope_ids=None, bint borrow=False):
        """Place rows start..stop-1; return the first row not taken (stop, or less if no slot is free).

        With ``addresses`` (and ``ports``, ``flowinfo``, ``scope_ids``, a
        Batch's arrays), each frame begun keeps its first packet's source.
        With ``borrow``, take_frames may hand complete frames out as views on
        ``data``, which the caller keeps unchanged until its next call here
        (or to flush, evict_begun_before or take_emitted).
        """
        cdef Py_ssize_t n = stop - start, j, taken, slot_size
        cdef Py_ssize_t rows_in = data.shape[0]
        cdef FrameCore *c = &self.core
        cdef FrameRowSources src
        cdef const FrameRowSources *sources = NULL
        if c.in_flight == NULL:
            raise RuntimeError("FramePlacer is not initialised")
        if not 0 <= start <= stop <= rows_in or lengths.shape[0] < stop or truncated.shape[0] < stop \
                or timestamps.shape[0] < stop:
            raise ValueError("place: rows out of range")
        if addresses is not None:
            if ports is None or flowinfo is None or scope_ids is None:
                raise ValueError("place: addresses need ports, flowinfo and scope_ids too")
            if addresses.shape[0] < stop or ports.shape[0] < stop or flowinfo.shape[0] < stop \
                    or scope_ids.shape[0] < stop:
                raise ValueError("place: source rows out of range")
            if addresses.shape[1] not in (4, 16) or not 0 <= family <= 0xFFFF:
                raise ValueError("place: addresses must be 4 or 16 bytes a row, family 0..65535")
        self._settle_views()
        if n == 0:
            return start
        slot_size = data.shape[1]
        for j in range(start, stop):
            # A length beyond the row would let a field or payload be read
            # past it: refused before any byte is read.
            if not 0 <= lengths[j] <= slot_size:
                raise ValueError(f"place: row {j} has length {lengths[j]}, outside 0..{slot_size}")
        if n > self._rows_capacity:
            rows = <const uint8_t **>realloc(self._rows, n * sizeof(uint8_t *))
            if rows == NULL:
                raise MemoryError()
            self._rows = rows
            self._rows_capacity = n
        for j in range(n):
            self._rows[j] = &data[start + j, 0]
        if addresses is not None:
            # frame_place_rows numbers rows from 0; the caller's rows start
            # at start (< stop <= every array's length, checked above).
            src.addresses = &addresses[start, 0]
            src.width = addresses.shape[1]
            src.ports = &ports[start]
            src.flowinfo = &flowinfo[start]
            src.scope_ids = &scope_ids[start]
            src.family = <uint16_t>family
            sources = &src
        c.borrow = borrow
        c.row_stride = data.strides[0]
        c.row0 = start
        if borrow:
            self._borrowed = data.base
        with nogil:
            c.now_ns = _now_ns()  # src/_capture.pxi: clock_gettime(CLOCK_MONOTONIC)
            taken = frame_place_rows(c, self._rows, &lengths[start], &truncated[start], &timestamps[start],
                                     sources, n)
        return start + taken

    def source(self, Py_ssize_t s):
        """(family, address bytes (16), port, flowinfo, scope_id) of slot s's frame's first packet."""
        cdef FrameCore *c = &self.core
        if not 0 <= s < c.nslots:
            raise ValueError(f"source: no slot {s}")
        cdef FrameSlot *slot = &c.slots[s]
        return (slot.source_family, (<char *>slot.source_address)[:16], slot.source_port,
                slot.source_flowinfo, slot.source_scope_id)

    def flush(self):
        """Emit every frame in flight, oldest first."""
        if self.core.in_flight == NULL:
            raise RuntimeError("FramePlacer is not initialised")
        self._settle_views()
        frame_flush(&self.core)

    def evict_begun_before(self, int64_t cutoff_ns):
        """Evict, oldest first, the frames in flight up to the newest begun before cutoff_ns."""
        if self.core.in_flight == NULL:
            raise RuntimeError("FramePlacer is not initialised")
        self._settle_views()
        frame_evict_begun_before(&self.core, cutoff_ns)

    @property
    def oldest_begun_ns(self):
        """CLOCK_MONOTONIC (ns) when the longest-waiting frame in flight got its first packet; -1: none."""
        if self.core.in_flight == NULL:
            return -1
        return frame_oldest_begun(&self.core)

    def take_emitted(self):
        """[(slot, frame_id, complete, first_ts, last_ts)] emitted since the last call, in order."""
        cdef Py_ssize_t j, s
        cdef FrameCore *c = &self.core
        self._settle_views()  # the frames' data is data[slot] here
        out = []
        for j in range(c.nemitted):
            s = c.emitted[j]
            c.slots[s].state = SLOT_HANDED_OUT
            out.append((s, c.slots[s].frame_id, c.slots[s].count == c.ppf,
                        c.slots[s].first_ts, c.slots[s].last_ts))
        c.nemitted = 0
        return out

    def take_frames(self, type frame_type not None, list data not None, list present not None, sources,
                    list handed_out not None):
        """What take_emitted gives, made into frames in one call, oldest first.

        Each frame is a new frame_type, made without calling the class (no
        __init__), with the contract.FRAME_FIELDS slots set to frame_id, data[slot],
        present[slot], complete, first_ts, last_ts and (sources, slot); its
        slot is appended to handed_out. A frame borrowed by the last place()
        gets the view on its rows instead of data[slot]. Calling the class
        (type_call, the argument binding, __init__'s frame) cost about half
        as much as placing the frame's packets: here each field is one slot
        store.
        """
        cdef Py_ssize_t j, s
        cdef FrameSlot *slot
        cdef FrameCore *c = &self.core
        cdef PyTypeObject *cls = <PyTypeObject *>frame_type
        cdef object frame, frame_data
        cdef tuple d
        cdef slice payload = slice(c.payload_offset, c.payload_offset + c.payload_size)
        # The lists are indexed below without bounds checks (the module's
        # boundscheck=False): one entry per slot, checked once here.
        if len(data) < c.nslots or len(present) < c.nslots:
            raise ValueError("take_frames: data and present need an entry per slot")
        if frame_type is not self._frame_type:
            self._frame_slots = frame_slot_descriptors(frame_type)
            self._frame_type = frame_type
        d = self._frame_slots
        out = []
        for j in range(c.nemitted):
            s = c.emitted[j]
            slot = &c.slots[s]
            slot.state = SLOT_HANDED_OUT
            handed_out.append(s)
            # tp_new with no arguments: object.__new__ unless the class
            # defines its own; descriptor stores are the member slots' own
            # setters (what `frame.field = value` reaches after the lookup).
            frame = cls.tp_new(frame_type, <PyObject *>_NO_ARGS, NULL)
            if slot.view != NULL:
                frame_data = self._borrowed[slot.view_row:slot.view_row + c.ppf, payload]
                slot.view = NULL
            else:
                frame_data = data[s]
            Py_TYPE(d[0]).tp_descr_set(d[0], frame, slot.frame_id)
            Py_TYPE(d[1]).tp_descr_set(d[1], frame, frame_data)
            Py_TYPE(d[2]).tp_descr_set(d[2], frame, present[s])
            Py_TYPE(d[3]).tp_descr_set(d[3], frame, slot.count == c.ppf)
            Py_TYPE(d[4]).tp_descr_set(d[4], frame, slot.first_ts)
            Py_TYPE(d[5]).tp_descr_set(d[5], frame, slot.last_ts)
            Py_TYPE(d[6]).tp_descr_set(d[6], frame, (sources, s))
            out.append(frame)
        c.nemitted = 0
        self._borrowed = None
        return out

    cdef int _release(self, Py_ssize_t s) except -1:
        cdef FrameCore *c = &self.core
        # Only a slot handed out by take_emitted: one still in the emitted
        # queue, reused and emitted again, would overrun the queue.
        if not 0 <= s < c.nslots or c.slots[s].state != SLOT_HANDED_OUT:
            raise ValueError(f"release: slot {s} is not one take_emitted handed out")
        c.slots[s].state = SLOT_FREE
        c.free_list[c.nfree] = s
        c.nfree += 1
        return 0

    def release(self, Py_ssize_t s):
        """Give an emitted frame's slot back for reuse."""
        self._release(s)

    def release_all(self, list slots not None):
        """release() each of these slots, in one call (a C call each, not a method call)."""
        for s in slots:
            self._release(s)

    @property
    def free_slots(self):
        return self.core.nfree

    @property
    def slots(self):
        return self.core.nslots

    @property
    def counters(self):
        """(placed, late, duplicate, rejected, frames_complete, frames_incomplete, frames_missing)."""
        cdef FrameCore *c = &self.core
        return (c.placed, c.late, c.duplicate, c.rejected, c.frames_complete, c.frames_incomplete,
                c.frames_missing)
