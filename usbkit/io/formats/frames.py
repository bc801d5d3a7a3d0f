"""A plain folder of frame folders: every subfolder of PNG/JPEG frames is one clip."""

from __future__ import annotations

from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.io.decode import IMAGE_SUFFIXES, folder_frames
from usbkit.io.formats.writer import StudyWriter, safe_name


def import_frame_folders(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Import ``SRC/<clip>/<frames>`` as a study with no annotations (one patient per clip).

    Every visible subfolder must be a clip: a subfolder without frames, or a frame image
    lying directly in ``SRC``, is refused rather than skipped.
    """
    src = Path(src)
    if not src.is_dir():
        raise UsbkitError("the source folder does not exist", file=src)
    visible = sorted(p for p in src.iterdir() if not p.name.startswith("."))
    loose = [p for p in visible if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if loose:
        raise UsbkitError(
            f"frame images lie directly in this folder ({loose[0].name}, ...); they belong to "
            "no clip",
            file=src,
            fix="Put each clip's frames in a subfolder of its own",
        )
    folders = [p for p in visible if p.is_dir()]
    empty = [p for p in folders if not folder_frames(p)]
    if empty:
        raise UsbkitError(
            "this subfolder holds no PNG/JPEG frames; every subfolder is imported as a clip",
            file=empty[0],
            fix="Move it out of the source folder, or put the clip's frames in it",
        )
    if not folders:
        raise UsbkitError(
            "no subfolder of PNG/JPEG frames found",
            file=src,
            fix="Put each clip's frames in a subfolder of its own",
        )
    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for folder in folders:
            clip_id = safe_name(folder.name)
            rel = w.copy_media(folder, w.media_name(clip_id))
            w.add_clip(clip_id, clip_id, rel, source=folder.name)
    return out
