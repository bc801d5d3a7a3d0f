"""Writing outputs without losing what the user already has.

Every file is written to a temporary name beside its destination and renamed into place
only when it is complete, so a crash, a full disk or an interrupt never leaves a
half-written file where a good one used to be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from usbkit.errors import UsbkitError


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``dest`` if the block succeeds.

    Parameters
    ----------
    dest : str or Path
        Final location.
    overwrite : bool
        When False and ``dest`` exists, raise a :class:`UsbkitError` before writing.
    """
    dest = Path(dest)
    if not overwrite and dest.exists():
        raise UsbkitError(
            "this output already exists and usbkit does not overwrite results",
            file=dest,
            fix="Choose a new output name, or move the old file away first",
        )
    ensure_writable_dir(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise UsbkitError(
            f"could not write this file ({exc.strerror or exc})",
            file=dest,
            fix="Check that the disk is not full and that the folder is writable",
        ) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(dest: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """Write text to ``dest`` atomically and return the path."""
    with atomic_path(dest, overwrite=overwrite) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsbkitError(
                f"could not write this file ({exc.strerror or exc})",
                file=dest,
                fix="Check that the disk is not full and that the folder is writable",
            ) from exc
    return Path(dest)


def write_csv(dest: str | Path, frame, *, overwrite: bool = True) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(dest, overwrite=overwrite) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(dest)


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check it can be written, with a clear error if not."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        raise UsbkitError(
            "this output folder is read-only"
            if existing == path
            else f"this output folder cannot be created: {existing} is read-only",
            file=path,
            fix="Choose a folder you can write to, or change its permissions",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsbkitError(
            f"cannot create this output folder ({exc.strerror or exc})",
            file=path,
            fix="Choose a folder you can write to",
        ) from exc
    if not os.access(path, os.W_OK):
        raise UsbkitError(
            "this output folder is read-only",
            file=path,
            fix="Choose a folder you can write to, or change its permissions",
        )
    return path


def refuse_nonempty(path: str | Path) -> Path:
    """Raise when ``path`` exists and is not an empty folder: usbkit never overwrites output."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsbkitError(
            "this output folder already holds files and usbkit does not overwrite them",
            file=path,
            fix="Choose a new folder name",
        )
    return path


@contextlib.contextmanager
def atomic_dir(dest: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest`` that becomes ``dest`` when the block succeeds.

    The one way usbkit writes a whole output folder (a study, an export, a synthetic cohort):
    everything is built aside and swapped in whole, so a failure or an interrupt leaves no
    half-written folder and nothing the user had is touched.

    Parameters
    ----------
    dest : str or Path
        Final folder. It must not exist or be empty, unless ``overwrite``.
    overwrite : bool
        Replace an existing folder; it is kept, untouched, until the new one is complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_dir(root / "out") as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(p.name for p in (root / "out").iterdir())
    ['a.txt']
    """
    dest = Path(dest)
    if not overwrite:
        refuse_nonempty(dest)
    parent = ensure_writable_dir(dest.parent if str(dest.parent) else Path("."))
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        old = None
        if dest.exists():
            if dest.is_dir() and not any(dest.iterdir()):
                dest.rmdir()
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=parent))
                os.replace(dest, old / "previous")
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsbkitError(
            f"could not write this folder ({exc.strerror or exc})",
            file=dest,
            fix="Check that the disk is not full and that the folder is writable",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
