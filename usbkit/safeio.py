"""Writing outputs without losing what the user already has.

Every file is written to a temporary name beside its destination and renamed into place
only when it is complete, so a crash, a full disk or an interrupt never leaves a
half-written file where a good one used to be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.version import __version__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def as_created(path: str | Path, folder: bool = False) -> None:
    """Give a file or folder built aside the permissions a plain ``open`` or ``mkdir`` would
    have given it under the user's umask (``tempfile`` makes them private to the user, which
    would lock colleagues out of a report on a shared drive)."""
    try:
        os.chmod(path, (0o777 if folder else 0o666) & ~_umask())
    except OSError:  # a file system without permissions (some network shares): keep as is
        pass


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
        as_created(tmp_path)
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


def write_between_markers(dest: str | Path, name: str, text: str) -> Path:
    r"""Replace what lies between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in a
    Markdown file with ``text`` (the markers stay; the file is rewritten atomically).

    The documentation's generated parts (the README's table, the calibration results) are
    written this way, so the numbers in them always come from a run.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> doc = pathlib.Path(tempfile.mkdtemp()) / "doc.md"
    >>> _ = doc.write_text("Intro\n<!-- t:begin -->\nold\n<!-- t:end -->\nEnd\n")
    >>> print(write_between_markers(doc, "t", "new\n").read_text(), end="")
    Intro
    <!-- t:begin -->
    new
    <!-- t:end -->
    End
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = Path(dest).read_text(encoding="utf-8")
    if doc.count(begin) != 1 or doc.count(end) != 1 or doc.index(begin) > doc.index(end):
        raise UsbkitError(
            f"this file needs the markers {begin} and {end}, once each and in that order",
            file=dest,
            fix="Put the two markers where the generated text belongs",
        )
    head, rest = doc.split(begin, 1)
    tail = rest.split(end, 1)[1]
    body = text if text.endswith("\n") else text + "\n"
    return write_text(dest, head + begin + "\n" + body + end + tail)


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
        as_created(tmp, folder=True)
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


#: The file that marks a folder as the output of a usbkit command (and which command).
OUTPUT_MARKER = ".usbkit-output.json"


def output_owner(path: str | Path) -> str | None:
    """The usbkit command that wrote the folder ``path`` (its marker), or None."""
    marker = Path(path) / OUTPUT_MARKER
    try:
        return str(json.loads(marker.read_text(encoding="utf-8"))["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_output(path: str | Path, command: str) -> Path:
    """Mark the folder ``path`` as the output of usbkit ``command`` (see :func:`output_owner`)."""
    return write_text(
        Path(path) / OUTPUT_MARKER, json.dumps({"command": command, "usbkit_version": __version__})
    )


def check_output_dir(dest: str | Path, command: str, overwrite: bool) -> Path:
    """Apply the output rule to folder ``dest`` before anything is computed.

    A missing or empty folder is fine. A folder holding files is refused, unless it is an
    earlier output of the same ``command`` (its marker says so) and ``overwrite`` is given.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsbkitError(
            "this output is a file, not a folder",
            file=dest,
            fix="Give a new folder name for the output",
        )
    if not dest.exists() or not any(dest.iterdir()):
        return dest
    owner = output_owner(dest)
    if not overwrite:
        again = (
            f"or add --overwrite to replace this earlier `usbkit {command}` output"
            if owner == command
            else "usbkit never overwrites files it did not write"
        )
        raise UsbkitError(
            "this output folder already holds files",
            file=dest,
            fix=f"Choose a new folder name, {again}",
        )
    if owner != command:
        what = f"an earlier `usbkit {owner}` output" if owner else "not a usbkit output"
        raise UsbkitError(
            f"--overwrite only replaces an earlier `usbkit {command}` output, and this folder "
            f"is {what}",
            file=dest,
            fix="Choose a new folder name; usbkit never overwrites files it did not write",
        )
    return dest


@contextlib.contextmanager
def output_dir(dest: str | Path, command: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Build the whole output of ``command`` aside and swap it into ``dest`` when complete.

    The output rule of every usbkit command (docs/command-line.md#rules-every-command-follows):
    a non-empty ``dest`` is refused unless it is an earlier output of the same command and
    ``overwrite`` is given; then the earlier output stays byte-identical until the new one is
    complete, and survives a failed or interrupted run. The folder is marked as this
    command's output.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with output_dir(root / "res", "evaluate") as tmp:
    ...     _ = (tmp / "results.json").write_text("{}")
    >>> output_owner(root / "res")
    'evaluate'
    >>> with output_dir(root / "res", "evaluate") as tmp:  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    usbkit.errors.UsbkitError: ...res: this output folder already holds files. Choose a new folder name, or add --overwrite to replace this earlier `usbkit evaluate` output.
    """
    dest = check_output_dir(dest, command, overwrite)
    with atomic_dir(dest, overwrite=True) as tmp:
        mark_output(tmp, command)
        yield tmp


def check_output_file(dest: str | Path, overwrite: bool, looks_like_ours) -> Path:
    """The output rule for a single file: an existing file is replaced only with
    ``overwrite`` and only when ``looks_like_ours(path)`` says usbkit wrote it."""
    dest = Path(dest)
    if dest.is_dir():
        raise UsbkitError(
            "this output is a folder, not a file", file=dest, fix="Give a file name (.csv)"
        )
    if dest.exists():
        if not overwrite:
            raise UsbkitError(
                "this output already exists and usbkit does not overwrite results",
                file=dest,
                fix="Choose a new output name, or add --overwrite to replace it",
            )
        if not looks_like_ours(dest):
            raise UsbkitError(
                "--overwrite only replaces a file usbkit wrote, and this one is not",
                file=dest,
                fix="Choose a new output name; usbkit never overwrites files it did not write",
            )
    return dest
