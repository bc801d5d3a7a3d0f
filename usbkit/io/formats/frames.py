"""A plain folder of frame folders: every subfolder of PNG/JPEG frames is one clip."""

from __future__ import annotations

from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.io.decode import folder_frames
from usbkit.io.formats.writer import StudyWriter, safe_name


def import_frame_folders(src: Path, out: Path) -> Path:
    """Import ``SRC/<clip>/<frames>`` as a study with no annotations (one patient per clip)."""
    if not src.is_dir():
        raise UsbkitError("the source folder does not exist", file=src)
    folders = sorted(p for p in src.iterdir() if p.is_dir() and folder_frames(p))
    if not folders:
        raise UsbkitError(
            "no subfolder of PNG/JPEG frames found",
            file=src,
            fix="Put each clip's frames in a subfolder of its own",
        )
    with StudyWriter(out) as w:
        for folder in folders:
            clip_id = safe_name(folder.name)
            rel = w.copy_media(folder, f"clips/{clip_id}")
            w.add_clip(clip_id, clip_id, rel)
    return out
