"""Frames to a zarr v3 directory store (the ``zarr`` extra), laid out as the HDF5 file is.

``frames/data`` (one frame per chunk), ``frames/present``, ``frames/frame_id``,
``frames/first_timestamp``, and the root attributes ``spec`` and ``stats``
(JSON text). One chunk per frame is what lets ``dask.array.from_zarr`` read
the frames of a long run in parallel.
"""

from __future__ import annotations

import os

import numpy as np

from .spec import FrameSpec

__all__ = ["ZarrFrameStore"]

_INDEX_CHUNK = 1024


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("writing frames to zarr needs zarr 3: pip install 'fastnet[zarr]'") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError(f"writing frames to zarr needs zarr 3 or later, this is {zarr.__version__}")
    return zarr


class ZarrFrameStore:
    """One zarr frame store being written; used by fastnet.FrameWriter."""

    def __init__(self, path: "str | os.PathLike[str]", spec: FrameSpec, compression=None):
        zarr = _zarr()
        ppf, size = spec.packets_per_frame, spec.payload_size
        self._root = zarr.open_group(os.fspath(path), mode="w", zarr_format=3)
        self._root.attrs["spec"] = spec.to_json()
        self._root.attrs["stats"] = "{}"
        group = self._root.create_group("frames")
        compressors = None if compression is None else "auto"
        self._data = group.create_array(
            "data", shape=(0, ppf, size), chunks=(1, ppf, size), dtype="uint8", compressors=compressors
        )
        self._present = group.create_array(
            "present", shape=(0, ppf), chunks=(_INDEX_CHUNK, ppf), dtype="bool"
        )
        self._frame_id = group.create_array("frame_id", shape=(0,), chunks=(_INDEX_CHUNK,), dtype="uint64")
        self._first_ts = group.create_array(
            "first_timestamp", shape=(0,), chunks=(_INDEX_CHUNK,), dtype="int64"
        )
        self.count = 0

    def append(
        self, frame_ids: np.ndarray, data: np.ndarray, present: np.ndarray, first_ts: np.ndarray
    ) -> None:
        for array, values in (
            (self._data, data),
            (self._present, present),
            (self._frame_id, frame_ids),
            (self._first_ts, first_ts),
        ):
            array.append(values, axis=0)
        self.count += len(frame_ids)

    def flush(self, stats_json: str) -> None:
        self._root.attrs["stats"] = stats_json

    def close(self) -> None:
        pass  # every append is on disk when it returns
