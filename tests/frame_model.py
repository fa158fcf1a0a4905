"""A one-packet-at-a-time model of frame assembly, in plain Python: what both engines must match.

It follows docs/guide/frames.md rule by rule, with unbounded integers and no
arrays, so that it is easy to check by reading. ``feed`` takes datagrams as
(bytes, timestamp, truncated, source) and returns the frames emitted, each as
(frame_id, data bytes, present tuple, complete, first_ts, last_ts, source).
"""

U64 = (1 << 64) - 1


class ModelAssembler:
    def __init__(self, spec, frames_in_flight):
        self.spec = spec
        self.window = frames_in_flight
        self.base = 0  # ids below it are late
        self.in_flight = {}  # frame id -> dict
        self.last_emitted = None
        self.out = []
        self.counts = dict(
            frames_complete=0,
            frames_incomplete=0,
            frames_missing=0,
            packets_placed=0,
            packets_late=0,
            packets_duplicate=0,
            packets_rejected=0,
        )

    def _place_of(self, datagram, truncated):
        """(frame id, index) of a datagram, or None if it is rejected."""
        spec = self.spec
        if truncated or len(datagram) < spec.min_length:
            return None
        if spec.packet_size is not None and len(datagram) != spec.packet_size:
            return None
        if spec.placement == "counter":
            value = spec.counter.read(datagram)
            return value // spec.packets_per_frame, value % spec.packets_per_frame
        frame_id = spec.frame_id.read(datagram)
        if spec.placement == "index":
            index = spec.index.read(datagram)
            if index >= spec.packets_per_frame:
                return None
            return frame_id, index
        offset = spec.offset.read(datagram)
        if offset % spec.payload_size or offset // spec.payload_size >= spec.packets_per_frame:
            return None
        return frame_id, offset // spec.payload_size

    def _emit(self, frame_id):
        frame = self.in_flight.pop(frame_id)
        ppf, size = self.spec.packets_per_frame, self.spec.payload_size
        complete = all(frame["present"])
        self.counts["frames_complete" if complete else "frames_incomplete"] += 1
        if self.last_emitted is not None:
            self.counts["frames_missing"] += frame_id - self.last_emitted - 1
        self.last_emitted = frame_id
        data = b"".join(
            frame["rows"][i] if frame["present"][i] else bytes([self.spec.fill]) * size for i in range(ppf)
        )
        self.out.append(
            (
                frame_id,
                data,
                tuple(frame["present"]),
                complete,
                frame["first"],
                frame["last"],
                frame["source"],
            )
        )

    def _cascade(self):
        while self.in_flight:
            oldest = min(self.in_flight)
            if not all(self.in_flight[oldest]["present"]):
                return
            self._emit(oldest)
            self.base = oldest + 1

    def feed(self, datagrams):
        self.out = []
        for datagram, stamp, truncated, source in datagrams:
            place = self._place_of(datagram, truncated)
            if place is None:
                self.counts["packets_rejected"] += 1
                continue
            frame_id, index = place
            if frame_id < self.base:
                self.counts["packets_late"] += 1
                continue
            if frame_id >= self.base + self.window:  # the window moves: older frames are evicted
                new_base = frame_id - self.window + 1
                for old in sorted(f for f in self.in_flight if f < new_base):
                    self._emit(old)
                self.base = new_base
                self._cascade()
            frame = self.in_flight.setdefault(
                frame_id,
                dict(rows={}, present=[False] * self.spec.packets_per_frame, first=0, last=0, source=source),
            )
            if frame["present"][index]:
                self.counts["packets_duplicate"] += 1
                continue
            start = self.spec.payload_offset
            frame["rows"][index] = bytes(datagram[start : start + self.spec.payload_size])
            if not any(frame["present"]):
                frame["first"] = stamp
            frame["present"][index] = True
            frame["last"] = stamp
            self.counts["packets_placed"] += 1
            if all(frame["present"]):
                self._cascade()
        return self.out

    def flush(self):
        self.out = []
        for frame_id in sorted(self.in_flight):
            self._emit(frame_id)
        if self.last_emitted is not None:
            self.base = max(self.base, self.last_emitted + 1)
        return self.out
