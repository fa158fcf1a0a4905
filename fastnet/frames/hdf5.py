"""Frames to HDF5 through h5py (the ``hdf5`` extra), readable while being written (SWMR).

Layout (every dataset grows along its first axis, one entry per frame):

``/frames/data``            uint8 ``[n, packets_per_frame, payload_size]``, one frame per chunk
``/frames/present``         bool ``[n, packets_per_frame]``
``/frames/frame_id``        uint64 ``[n]``
``/frames/first_timestamp`` int64 ``[n]`` (ns; 0 without timestamps)
root attribute ``spec``     the FrameSpec as JSON
root attribute ``stats``    the counts as JSON, padded with spaces (see below)

SWMR ("single writer, multiple readers") lets a reader open the file with
``h5py.File(path, "r", swmr=True)`` during the run. Its rule, from the HDF5
SWMR documentation: once the writer has switched SWMR on, it "can not add new
objects or attributes to the file" -- only extend datasets and overwrite
values in place. So every dataset and both attributes are made first, and
``stats`` is a fixed-size string, rewritten in place at every flush and at
the end.
"""

from __future__ import annotations

import os

import numpy as np

from .spec import FrameSpec

__all__ = ["Hdf5FrameStore", "STATS_BYTES"]

#: Room for the stats JSON (a few hundred bytes in practice).
STATS_BYTES = 4096
#: Rows per chunk of the small per-frame datasets.
_INDEX_CHUNK = 1024


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("writing frames to HDF5 needs h5py: pip install 'fastnet[hdf5]'") from None
    return h5py


def padded_stats(text: str) -> np.bytes_:
    raw = text.encode("utf-8")
    if len(raw) > STATS_BYTES:
        raise ValueError(f"stats JSON of {len(raw)} bytes does not fit the {STATS_BYTES}-byte attribute")
    return np.bytes_(raw.ljust(STATS_BYTES))


class Hdf5FrameStore:
    """One HDF5 frame file being written; used by fastnet.FrameWriter."""

    def __init__(self, path: "str | os.PathLike[str]", spec: FrameSpec, compression=None):
        h5py = _h5py()
        ppf, size = spec.packets_per_frame, spec.payload_size
        self._file = h5py.File(path, "w", libver="latest")
        try:
            self._file.attrs["spec"] = spec.to_json()
            self._file.attrs.create("stats", padded_stats("{}"), dtype=f"S{STATS_BYTES}")
            group = self._file.create_group("frames")
            self._data = group.create_dataset(
                "data",
                (0, ppf, size),
                maxshape=(None, ppf, size),
                chunks=(1, ppf, size),
                dtype=np.uint8,
                compression=compression,
            )
            self._present = group.create_dataset(
                "present", (0, ppf), maxshape=(None, ppf), chunks=(_INDEX_CHUNK, ppf), dtype=np.bool_
            )
            self._frame_id = group.create_dataset(
                "frame_id", (0,), maxshape=(None,), chunks=(_INDEX_CHUNK,), dtype=np.uint64
            )
            self._first_ts = group.create_dataset(
                "first_timestamp", (0,), maxshape=(None,), chunks=(_INDEX_CHUNK,), dtype=np.int64
            )
            self._file.swmr_mode = True
        except BaseException:
            self._file.close()
            raise
        self.count = 0

    def append(
        self, frame_ids: np.ndarray, data: np.ndarray, present: np.ndarray, first_ts: np.ndarray
    ) -> None:
        n, k = self.count, len(frame_ids)
        for dataset, values in (
            (self._data, data),
            (self._present, present),
            (self._frame_id, frame_ids),
            (self._first_ts, first_ts),
        ):
            dataset.resize(n + k, axis=0)
            dataset[n : n + k] = values
        self.count = n + k

    def flush(self, stats_json: str) -> None:
        """Make what was written visible to SWMR readers, with the stats so far."""
        self._file.attrs.modify("stats", padded_stats(stats_json))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
