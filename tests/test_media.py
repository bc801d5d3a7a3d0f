"""Clip readers: every format of docs/study-format.md, checked pixel by pixel."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import pattern_frames
from PIL import Image

from usbkit.errors import UsbkitError
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.decode import to_gray
from usbkit.io.encode import write_dicom_cine, write_frame_folder, write_gif, write_video

RAW = ReaderSettings(crop=False)


@pytest.mark.parametrize(
    "suffix,codec,tol",
    [(".mp4", "libx264", 2), (".mkv", "libx264", 2), (".avi", "mjpeg", 6), (".mov", "libx264", 2)],
)
def test_video_formats_decode_to_the_written_gray_levels(tmp_path, suffix, codec, tol):
    frames = pattern_frames()
    path = tmp_path / f"clip{suffix}"
    kwargs = {"crf": 0} if codec == "libx264" else {"pix_fmt": "yuvj420p"}
    write_video(frames, path, fps=25, codec=codec, **kwargs)
    clip = open_clip(path, RAW)
    assert len(clip) == len(frames)
    assert clip.fps == pytest.approx(25)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == frames.shape
    assert np.abs(clip.frames.astype(int) - frames).max() <= tol


def test_variable_frame_rate_video_indexes_frames_in_decode_order(tmp_path):
    frames = pattern_frames(n=5)
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"crf": "0"}
        s.codec_context.time_base = Fraction(1, 1000)
        for f, pts in zip(frames, [0, 33, 200, 233, 900]):  # irregular gaps
            vf = av.VideoFrame.from_ndarray(f, format="gray")
            vf.pts, vf.time_base = pts, Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    clip = open_clip(path, RAW)
    assert len(clip) == 5
    for i in range(5):
        assert np.abs(clip[i].astype(int) - frames[i]).max() <= 2


@pytest.mark.parametrize(
    "photometric,jpeg,tol",
    [
        ("MONOCHROME2", False, 0),
        ("RGB", False, 0),
        ("MONOCHROME2", True, 3),
        ("YBR_FULL_422", True, 4),
    ],
)
def test_dicom_cine(tmp_path, photometric, jpeg, tol):
    frames = pattern_frames()
    path = tmp_path / "cine.dcm"
    write_dicom_cine(frames, path, fps=20, photometric=photometric, jpeg=jpeg)
    clip = open_clip(path, RAW)
    assert len(clip) == 6 and clip.fps == pytest.approx(20) and clip.fps_source == "FrameTime"
    assert np.abs(clip.frames.astype(int) - frames).max() <= tol


def test_dicom_rgb_is_converted_with_bt601_luma(tmp_path):
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    write_dicom_cine(rgb, tmp_path / "c.dcm", photometric="RGB")
    clip = open_clip(tmp_path / "c.dcm", RAW)
    assert clip[0][0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert to_gray(rgb)[0, 0, 0] == clip[0][0, 0]


def test_dicom_fps_from_cine_rate_and_no_patient_tags_in_cache(tmp_path, cache_dir):
    write_dicom_cine(
        pattern_frames(),
        tmp_path / "c.dcm",
        fps=12,
        timing="CineRate",
        patient_name="SECRET^PATIENTNAME",
    )
    clip = open_clip(tmp_path / "c.dcm")
    assert clip.fps == pytest.approx(12) and clip.fps_source == "CineRate"
    for f in cache_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"SECRET" not in data and b"PATIENTNAME" not in data


def test_gif_frame_folder_and_still_image(tmp_path):
    frames = pattern_frames(n=4)
    write_gif(frames, tmp_path / "a.gif", fps=10)
    clip = open_clip(tmp_path / "a.gif", RAW)
    assert len(clip) == 4 and clip.fps == pytest.approx(10)
    assert np.array_equal(np.asarray(clip.frames), frames)

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):  # names that sort wrongly as plain strings
        Image.fromarray(f).save(folder / f"frame{i * 5}.png")
    clip = open_clip(folder, RAW)
    assert np.array_equal(np.asarray(clip.frames), frames)

    Image.fromarray(frames[2]).save(tmp_path / "still.png")
    clip = open_clip(tmp_path / "still.png", RAW)
    assert len(clip) == 1 and np.array_equal(clip[0], frames[2])


def test_one_frame_gif_is_a_one_frame_clip(tmp_path):
    write_gif(pattern_frames(n=1), tmp_path / "one.gif")
    assert len(open_clip(tmp_path / "one.gif", RAW)) == 1


def test_cache_is_memory_mapped_and_invalidated_when_the_file_changes(tmp_path):
    frames = pattern_frames(n=3)
    path = tmp_path / "f"
    write_frame_folder(frames, path)
    first = open_clip(path, RAW)
    assert isinstance(first.frames, np.memmap)
    Image.fromarray(np.full((48, 64), 7, np.uint8)).save(path / "00001.png")
    second = open_clip(path, RAW)
    assert second[1].max() == 7
    assert first[1].min() > 7  # the old cache entry is untouched, a new one was made


def _screen_clip(n=6, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.full((n, 120, 160), 5, np.uint8)
    frames[:, 20:110, 30:140] = rng.integers(30, 220, (n, 90, 110))
    frames[:, 3:10, 5:90] = 240  # burned-in text line
    frames[:, 40:100:6, 150:155] = 200  # depth ticks
    return frames


def test_crop_finds_the_bmode_region_and_maps_boxes_back(tmp_path):
    write_frame_folder(_screen_clip(), tmp_path / "s")
    clip = open_clip(tmp_path / "s")
    assert clip.crop_box == (30, 20, 140, 110)
    assert clip.frames.shape[1:] == (90, 110)
    box = np.array([[50, 40, 60, 70]])
    assert np.array_equal(clip.to_original(clip.to_crop(box)), box)
    assert np.array_equal(clip.to_crop(box), [[20, 20, 30, 50]])
    off = open_clip(tmp_path / "s", ReaderSettings(crop=False))
    assert off.crop_box == (0, 0, 160, 120)


@pytest.mark.parametrize("case", ["truncated", "empty", "garbage", "missing"])
def test_bad_video_files_give_a_clear_error(tmp_path, case):
    path = tmp_path / "bad.mp4"
    if case != "missing":
        write_video(pattern_frames(n=30), path, fps=25)
        data = path.read_bytes()
        path.write_bytes(
            {"truncated": data[: len(data) // 3], "empty": b"", "garbage": b"x" * 999}[case]
        )
    with pytest.raises(UsbkitError) as err:
        open_clip(path)
    assert "bad.mp4" in str(err.value)


def test_dicom_without_pixel_data_is_reported(tmp_path):
    import pydicom

    write_dicom_cine(pattern_frames(), tmp_path / "c.dcm")
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(UsbkitError, match="no image"):
        open_clip(tmp_path / "nopix.dcm")


@pytest.mark.parametrize(
    "pix_fmt, codec", [("yuv420p", "libx264"), ("yuvj420p", "mjpeg"), ("yuv444p", "libx264")]
)
def test_video_frames_read_from_the_luma_plane_equal_ffmpegs_gray_conversion(
    tmp_path, pix_fmt, codec
):
    import av

    from usbkit.io.decode import video_gray

    frames = np.random.default_rng(3).integers(0, 256, (5, 48, 64), dtype=np.uint8)
    path = write_video(frames, tmp_path / "v.mkv", fps=10, codec=codec, pix_fmt=pix_fmt)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert np.array_equal(video_gray(frame), frame.to_ndarray(format="gray"))


def test_the_luma_table_two_pixels_at_a_time_equals_one_pixel_at_a_time():
    from usbkit.io.decode import apply_luma_lut, luma_lut

    lut = luma_lut("yuv420p", 1)  # limited range: a table that is not the identity
    assert lut is not None and not np.array_equal(lut, np.arange(256))
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (37, 96), dtype=np.uint8)
    for y in (plane, plane[:, :64], plane[:, :63], plane[:, 1:65], plane[::2, :80]):
        assert np.array_equal(apply_luma_lut(lut, y), np.take(lut, y)), y.shape


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".gif"])  # frame count in the header or not
def test_a_clip_decoded_without_the_cache_equals_the_cached_frames(tmp_path, suffix):
    frames = np.random.default_rng(5).integers(0, 256, (21, 48, 64), dtype=np.uint8)
    path = tmp_path / f"v{suffix}"
    write_gif(frames, path) if suffix == ".gif" else write_video(frames, path, fps=10)
    cached = open_clip(path, ReaderSettings(crop=False, cache=True, cache_dir=tmp_path / "c"))
    plain = open_clip(path, ReaderSettings(crop=False, cache=False))
    assert len(plain) == len(cached) == 21
    assert np.array_equal(np.asarray(plain.frames), np.asarray(cached.frames))


@pytest.mark.parametrize("hint", [0, 5, 21, 40, 10**9])  # 10**9: a forged header
@pytest.mark.parametrize("written_in_place", [True, False])  # video writes into its slot
def test_frames_in_memory_do_not_depend_on_the_frame_count_the_header_gives(hint, written_in_place):
    from usbkit.io.cache import FrameStore
    from usbkit.io.decode import Decoded

    truth = np.random.default_rng(6).integers(0, 256, (21, 48, 64), dtype=np.uint8)
    store = FrameStore(Decoded(frames_hint=hint), max_bytes=30 * truth[0].nbytes)
    for frame in truth:
        if written_in_place:
            out = store.slot(frame.shape)
            out[...] = frame
            store.add(out)
        else:
            store.add(frame.copy())
    got = store.array()
    assert got.shape == truth.shape and np.array_equal(got, truth)
    assert store.buf.nbytes <= 30 * truth[0].nbytes  # the cap holds against a forged count


def test_a_video_decoded_in_memory_is_written_straight_into_the_clip_buffer(tmp_path):
    from usbkit.io import cache

    frames = np.random.default_rng(6).integers(0, 256, (21, 48, 64), dtype=np.uint8)
    path = write_video(frames, tmp_path / "v.mp4", fps=10)
    copies = []
    real_add = cache.FrameStore.add

    def counting_add(self, frame):
        place = self.buf[self.n] if self.n < len(self.buf) else None
        copies.append(place is None or place.ctypes.data != frame.ctypes.data)
        real_add(self, frame)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache.FrameStore, "add", counting_add)
        got, meta = cache.decode_in_memory(path)
    assert meta["n_frames"] == 21 and not any(copies)
    assert np.array_equal(got, np.stack(list(cache.iter_frames(path))))
