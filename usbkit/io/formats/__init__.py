"""Importers that turn public annotation formats into a usbkit study, and exporters back.

Each importer writes a complete study folder (docs/study-format.md): ``manifest.csv``,
``annotations.csv`` and the media copied under ``clips/``. The study is assembled in a
temporary folder and moved into place only when complete, so a failed import leaves nothing
half-written and never touches an existing folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.safeio import check_output_dir


def _registry() -> dict[str, Callable[..., Path]]:
    from usbkit.io.formats.busi import import_busi
    from usbkit.io.formats.clips import import_clips
    from usbkit.io.formats.coco_vid import import_coco_vid
    from usbkit.io.formats.cvat import import_cvat_video
    from usbkit.io.formats.frames import import_frame_folders

    return {
        "coco-vid": import_coco_vid,
        "cvat-video": import_cvat_video,
        "busi": import_busi,
        "frames": import_frame_folders,
        "clips": import_clips,
    }


FORMATS = ("coco-vid", "cvat-video", "busi", "frames", "clips")


def import_study(
    fmt: str, src: str | Path, out: str | Path, *, overwrite: bool = False, **kwargs
) -> Path:
    """Import ``src`` in format ``fmt`` into a new study folder ``out``.

    Parameters
    ----------
    fmt : {'coco-vid', 'cvat-video', 'busi', 'frames', 'clips'}
        Source format.
    src : str or Path
        The annotation file or source folder (for coco-vid with ``split_files``, the
        dataset folder the frame paths are relative to).
    out : str or Path
        The new study folder (must not exist or be empty).
    overwrite : bool
        Replace an earlier ``usbkit import`` output at ``out`` (kept until the new one is
        complete); a folder holding anything else is always refused.
    **kwargs
        Format options: ``images_root``, ``split_files`` (``{split: annotation file}``)
        and ``exclude_videos`` for coco-vid (:func:`usbkit.io.formats.coco_vid.import_coco_vid`),
        ``media`` for cvat-video.

    Returns
    -------
    Path
        The study folder.
    """
    registry = _registry()
    if fmt not in registry:
        raise UsbkitError(
            f"unknown import format '{fmt}'",
            fix=f"Use one of: {', '.join(FORMATS)}",
        )
    check_output_dir(out, "import", overwrite)  # refused before any work
    return registry[fmt](Path(src), Path(out), overwrite=overwrite, **kwargs)
