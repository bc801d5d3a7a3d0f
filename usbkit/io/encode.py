"""Writing clips: H.264 MP4 through PyAV, GIF, frame folders and DICOM cine.

Used by the synthetic cohort, the exporters and the tests (which make their own small media).
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(
    frames: np.ndarray,
    path: str | Path,
    fps: float = 30.0,
    codec: str = "libx264",
    crf: int = 18,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode grayscale frames ``(n, h, w)`` uint8 to a video file with PyAV.

    Parameters
    ----------
    frames : ndarray, shape (n, h, w), uint8
        Grayscale frames; height and width must be even for yuv420p.
    path : str or Path
        Output file (.mp4, .avi, .mkv, .mov).
    fps : float
        Frame rate.
    codec : str
        FFmpeg encoder name (``libx264``, ``mjpeg``, ``libx265``, ...).
    crf : int
        Constant rate factor for x264/x265 (lower is better quality).
    pix_fmt : str
        Pixel format of the encoded stream.
    """
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = int(frames.shape[2])
        stream.height = int(frames.shape[1])
        stream.pix_fmt = pix_fmt
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "grain"}
            stream.thread_type = "AUTO"
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="gray")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_gif(frames: np.ndarray, path: str | Path, fps: float = 10.0) -> Path:
    """Write grayscale frames as an animated GIF (Pillow)."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8), mode="L") for f in frames]
    duration = int(round(1000.0 / fps))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return Path(path)


def write_frame_folder(frames: np.ndarray, folder: str | Path, ext: str = ".png") -> Path:
    """Write frames as ``00000.png``, ``00001.png``, ... in ``folder``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(np.asarray(f, dtype=np.uint8)).save(folder / f"{i:05d}{ext}", quality=95)
    return folder


def write_dicom_cine(
    frames: np.ndarray,
    path: str | Path,
    fps: float = 25.0,
    photometric: str = "MONOCHROME2",
    jpeg: bool = False,
    patient_name: str = "ANONYMOUS",
    timing: str = "FrameTime",
) -> Path:
    """Write an ultrasound multi-frame DICOM cine.

    Parameters
    ----------
    frames : ndarray
        ``(n, h, w)`` grayscale or ``(n, h, w, 3)`` RGB uint8 frames.
    path : str or Path
        Output file.
    fps : float
        Frame rate, stored as FrameTime (ms) or CineRate.
    photometric : {'MONOCHROME2', 'RGB', 'YBR_FULL_422'}
        Photometric interpretation. ``YBR_FULL_422`` requires ``jpeg=True``.
    jpeg : bool
        Store frames JPEG-baseline compressed (encoded with Pillow, encapsulated).
    patient_name : str
        Patient tag written into the file (tests check it never leaks).
    timing : {'FrameTime', 'CineRate'}
        Which tag carries the frame rate.
    """
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        UltrasoundMultiFrameImageStorage,
        generate_uid,
    )

    frames = np.asarray(frames, dtype=np.uint8)
    if jpeg and photometric == "RGB":
        raise ValueError("JPEG baseline colour frames are YBR_FULL_422, not RGB")
    color = photometric != "MONOCHROME2"
    if color and frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    n, h, w = frames.shape[:3]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = patient_name
    ds.PatientID = "ID-" + patient_name.replace("^", "")[:8]
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20220101"
    ds.Rows, ds.Columns = h, w
    ds.NumberOfFrames = n
    ds.SamplesPerPixel = 3 if color else 1
    ds.PhotometricInterpretation = photometric
    if color:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if timing == "FrameTime":
        ds.FrameTime = f"{1000.0 / fps:.4f}"
        ds.FrameIncrementPointer = 0x00181063
    else:
        ds.CineRate = int(round(fps))
    if jpeg:
        encoded = []
        for f in frames:
            buf = io.BytesIO()
            img = Image.fromarray(f, mode="RGB" if color else "L")
            img.save(buf, format="JPEG", quality=95, subsampling=2 if color else 0)
            encoded.append(buf.getvalue())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return Path(path)
