"""FrameWriter: frames to HDF5 (SWMR) and zarr v3, read back; what it could not write is counted."""

import json
import threading

import numpy as np
import pytest
from frame_traffic import datagram, make_batch

import fastnet
from fastnet import Field, FrameAssembler, FrameSpec, FrameWriter

SPEC = FrameSpec(8, 16, 4, counter=Field(0, 8), fill=0x55)
FORMATS = ["h5", "zarr"]


def need(fmt):
    pytest.importorskip("h5py" if fmt == "h5" else "zarr")


def frames_from(backend, counters):
    asm = FrameAssembler(SPEC, 2, backend=backend)
    items = [(datagram(SPEC, c // 4, c % 4, SPEC.min_length, c), 1000 + c, False, 1) for c in counters]
    out = [f.copy() for f in asm.add(make_batch(items, SPEC.min_length))]
    out += [f.copy() for f in asm.flush()]
    return asm, out


def read_back(path):
    if str(path).endswith(".zarr"):
        import zarr

        root = zarr.open_group(str(path), mode="r")
        attrs = dict(root.attrs)
    else:
        import h5py

        with h5py.File(path, "r") as f:
            arrays = {
                name: f["frames"][name][()] for name in ("data", "present", "frame_id", "first_timestamp")
            }
            return arrays, {key: f.attrs[key] for key in f.attrs}
    arrays = {name: root["frames"][name][:] for name in ("data", "present", "frame_id", "first_timestamp")}
    return arrays, attrs


COUNTERS = [c for c in range(40) if c not in (5, 6, 17)] + [100, 101]  # incomplete frames, a gap


@pytest.mark.parametrize("fmt", FORMATS)
def test_frames_read_back_as_written(backend, tmp_path, fmt):
    need(fmt)
    asm, frames = frames_from(backend, COUNTERS)
    path = tmp_path / f"run.{fmt}"
    with FrameWriter(path, SPEC, stats_of=asm) as writer:
        writer.write(frames[:3])
        writer.write(frames[3:])
    arrays, attrs = read_back(path)
    assert arrays["data"].shape == (len(frames), 4, 16) and arrays["data"].dtype == np.uint8
    assert arrays["present"].dtype == np.bool_ and arrays["frame_id"].dtype == np.uint64
    assert arrays["first_timestamp"].dtype == np.int64
    assert np.array_equal(arrays["data"], np.stack([f.data for f in frames]))
    assert np.array_equal(arrays["present"], np.stack([f.present for f in frames]))
    assert arrays["frame_id"].tolist() == [f.frame_id for f in frames] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 25]
    assert arrays["first_timestamp"].tolist() == [f.first_timestamp for f in frames]
    assert FrameSpec.from_json(attrs["spec"]) == SPEC
    stats = json.loads(attrs["stats"])
    assert stats["source"] == asm.stats.as_dict()
    assert stats["writer"] == dict(
        frames_written=len(frames), frames_dropped=0, bytes_written=len(frames) * 64
    )


def test_hdf5_is_readable_while_being_written(tmp_path):
    h5py = pytest.importorskip("h5py")
    _, frames = frames_from("python", range(40))
    path = tmp_path / "live.h5"
    with FrameWriter(path, SPEC, flush_every=2) as writer:
        writer.write(frames[:4])  # flushed: visible to a SWMR reader
        with h5py.File(path, "r", swmr=True, libver="latest") as reader:
            data = reader["frames/data"]
            assert data.shape[0] == 4
            assert np.array_equal(data[3], frames[3].data)
            writer.write(frames[4:6])
            data.refresh()
            assert data.shape[0] == 6
            assert json.loads(reader.attrs["stats"])["writer"]["frames_written"] >= 4


@pytest.mark.parametrize("fmt", FORMATS)
def test_interrupted_run_leaves_a_complete_file(tmp_path, fmt):
    need(fmt)
    _, frames = frames_from("python", range(20))
    path = tmp_path / f"cut.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        with FrameWriter(path, SPEC, background=True) as writer:
            writer.write(frames)
            raise KeyboardInterrupt
    arrays, attrs = read_back(path)
    assert arrays["frame_id"].tolist() == list(range(5))
    assert json.loads(attrs["stats"])["writer"]["frames_written"] == 5


def test_a_writer_that_falls_behind_counts_what_it_could_not_write(tmp_path):
    pytest.importorskip("h5py")
    _, frames = frames_from("python", range(40))
    writer = FrameWriter(tmp_path / "slow.h5", SPEC, background=True, max_queue=2, flush_every=1)
    gate = threading.Event()
    real_append = writer._store.append

    def held_append(*args):
        gate.wait(30)
        real_append(*args)

    writer._store.append = held_append
    for frame in frames:  # the writer thread holds one; the queue takes two
        writer.write([frame])
    gate.set()
    writer.close()
    stats = writer.stats
    assert stats.frames_written + stats.frames_dropped == len(frames)
    assert stats.frames_dropped >= len(frames) - 3
    arrays, _ = read_back(tmp_path / "slow.h5")
    assert len(arrays["frame_id"]) == stats.frames_written


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(ValueError):
        FrameWriter(tmp_path / "run.txt", SPEC)
    with pytest.raises(TypeError):
        FrameWriter(tmp_path / "run.h5", "spec")
    with pytest.raises(ValueError):
        FrameWriter(tmp_path / "run.h5", SPEC, max_queue=0)


def test_a_writer_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_h5py(name, *args, **kw):
        if name == "h5py":
            raise ImportError("no h5py here")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ImportError, match=r"fastnet\[hdf5\]"):
        FrameWriter(tmp_path / "run.h5", SPEC)
    assert fastnet.FrameWriter is FrameWriter
