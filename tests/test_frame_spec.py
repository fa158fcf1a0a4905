"""FrameSpec and Field: every bad value refused at construction, and the JSON/TOML round trip."""

import json

import pytest

import fastnet
from fastnet import Field, FrameSpec
from fastnet.frames.field import MAX_TERMS


def counter_spec(**kw):
    args = dict(payload_offset=8, payload_size=16, packets_per_frame=4, counter=Field(0, 4))
    args.update(kw)
    return FrameSpec(**args)


def test_field_reads_big_and_little_with_shift_and_mask():
    data = bytes([0x12, 0x34, 0x56, 0x78])
    assert Field(0, 4).read(data) == 0x12345678
    assert Field(0, 4, "little").read(data) == 0x78563412
    assert Field(1, 2, shift=4, mask=0xFF).read(data) == 0x45
    assert Field(3, 1).read(data) == 0x78


def test_a_field_past_the_datagram_is_refused():
    with pytest.raises(ValueError):
        Field(2, 4).read(b"\0" * 5)


def test_linear_fields_sum_modulo_2_64():
    seconds, number = Field(0, 4), Field(4, 2)
    counter = seconds * 1000 + number
    data = (7).to_bytes(4, "big") + (3).to_bytes(2, "big")
    assert counter.read(data) == 7003
    assert (number + 2 * seconds).read(data) == 17
    assert (Field(0, 8) * (1 << 63) + Field(0, 8)).read(b"\xff" * 8) == (
        (1 << 63) * (2**64 - 1) + 2**64 - 1
    ) % 2**64


@pytest.mark.parametrize(
    "kw, error",
    [
        (dict(offset=0, size=9), ValueError),
        (dict(offset=0, size=0), ValueError),
        (dict(offset=-1, size=4), ValueError),
        (dict(offset=0, size=4, byteorder="middle"), ValueError),
        (dict(offset=0, size=4, byteorder=1), TypeError),
        (dict(offset=0, size=4, shift=32), ValueError),
        (dict(offset=0, size=4, mask=-1), ValueError),
        (dict(offset=0, size=4, mask=1 << 64), ValueError),
        (dict(offset=1.5, size=4), TypeError),
        (dict(offset=True, size=4), TypeError),
    ],
)
def test_bad_fields(kw, error):
    with pytest.raises(error):
        Field(**kw)


def test_linear_field_limits():
    with pytest.raises(ValueError):
        fastnet.LinearField([(Field(i, 1), 1) for i in range(MAX_TERMS + 1)])
    with pytest.raises(ValueError):
        Field(0, 1) * -1
    with pytest.raises(TypeError):
        Field(0, 1) + 3


@pytest.mark.parametrize(
    "kw, error",
    [
        (dict(payload_size=0), ValueError),
        (dict(packets_per_frame=0), ValueError),
        (dict(payload_offset=-1), ValueError),
        (dict(payload_offset=60000, payload_size=6000), ValueError),
        (dict(packet_size=23), ValueError),  # the payload ends at 24
        (dict(packet_size=0), ValueError),
        (dict(fill=256), ValueError),
        (dict(counter=None), ValueError),
        (dict(frame_id=Field(0, 4)), ValueError),  # counter and frame_id
        (dict(counter=4), TypeError),
        (dict(payload_size=1.0), TypeError),
        (dict(packets_per_frame=1 << 21), ValueError),
    ],
)
def test_bad_specs(kw, error):
    with pytest.raises(error):
        counter_spec(**kw)


def test_frame_id_needs_index_or_offset_not_both():
    for kw in (dict(frame_id=Field(0, 2)), dict(frame_id=Field(0, 2), index=Field(2, 1), offset=Field(3, 1))):
        with pytest.raises(ValueError):
            FrameSpec(4, 4, 2, **kw)
    with pytest.raises(ValueError):
        FrameSpec(4, 4, 2, index=Field(2, 1))


def test_packet_size_must_hold_the_fields():
    with pytest.raises(ValueError):
        FrameSpec(0, 8, 2, counter=Field(8, 4), packet_size=10)
    assert FrameSpec(0, 8, 2, counter=Field(8, 4), packet_size=12).min_length == 12


@pytest.mark.parametrize(
    "spec",
    [
        counter_spec(),
        counter_spec(packet_size=40, fill=0xAA),
        FrameSpec(8, 100, 4, frame_id=Field(0, 4) * 1000 + Field(4, 2, "little"), index=Field(6, 1, mask=3)),
        FrameSpec(8, 100, 4, frame_id=Field(0, 4, shift=3), offset=Field(4, 4)),
    ],
)
def test_json_round_trip(spec):
    again = FrameSpec.from_json(spec.to_json())
    assert again == spec
    assert again.placement == spec.placement
    assert json.loads(spec.to_json()) == spec.to_dict()


def test_toml_spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(
        """
payload_offset = 32
payload_size = 5000
packets_per_frame = 16
packet_size = 5032

[[frame_id]]
offset = 0
size = 4
scale = 25600

[[frame_id]]
offset = 4
size = 2

[index]
offset = 6
size = 1
mask = 0x0F
"""
    )
    spec = fastnet.load_frame_spec(path)
    assert spec == FrameSpec(
        32,
        5000,
        16,
        frame_id=Field(0, 4) * 25600 + Field(4, 2),
        index=Field(6, 1, mask=0x0F),
        packet_size=5032,
    )
    json_path = tmp_path / "spec.json"
    json_path.write_text(spec.to_json())
    assert fastnet.load_frame_spec(json_path) == spec


@pytest.mark.parametrize(
    "text, error",
    [
        ("payload_offset = 0\n", ValueError),  # missing keys
        (
            "payload_offset = 0\npayload_size = 4\npackets_per_frame = 2\nwrong = 1\n"
            "[counter]\noffset=0\nsize=1\n",
            ValueError,
        ),
        (
            "payload_offset = 0\npayload_size = 4\npackets_per_frame = 2\n[counter]\noffset=0\nsize=9\n",
            ValueError,
        ),
        ("payload_offset = 0\npayload_size = 4\npackets_per_frame = 2\ncounter = 3\n", TypeError),
        ("payload_offset = = 0\n", ValueError),
    ],
)
def test_bad_spec_files(tmp_path, text, error):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(error, match="spec"):
        fastnet.load_frame_spec(path)
