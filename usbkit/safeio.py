"""Writing outputs without losing what the user already has.

Every file is written to a temporary name beside its destination and renamed into place
only when it is complete, so a crash, a full disk or an interrupt never leaves a
half-written file where a good one used to be.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from usbkit.errors import UsbkitError, UsbkitWarning
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


# -- who is writing: temporary names, the lock on a destination, leftovers ------------------

_HOST: str | None = None


def _host() -> str:
    """This computer's name as it goes into a temporary name (letters, digits and '-')."""
    global _HOST
    if _HOST is None:
        _HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40].strip("-") or "host"
    return _HOST


def temporary_prefix(dest: Path) -> str:
    """How the temporary siblings of ``dest`` begin: ``.NAME.PID@HOST.`` (the pid and host
    prove later whose they are, see :func:`remove_leftovers`)."""
    return f".{dest.name}.{os.getpid()}@{_host()}."


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this computer (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, it is someone else's
        return True
    return True


def _lock_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.usbkit-lock")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_leftovers(dest: str | Path) -> list[Path]:
    """Remove what an earlier usbkit run on ``dest`` left when it was killed (SIGKILL, a
    power cut): its hidden siblings ``.NAME.PID@HOST.<random>.tmp`` (or ``.old``) whose
    process ran on this computer and is gone, and its lock. Anything else, another
    computer's or a live process's, is left alone. One warning line says what was removed.
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    pattern = re.compile(
        rf"^\.{re.escape(dest.name)}\.(\d+)@{re.escape(_host())}\.[^.]+\.(tmp|old)$"
    )
    removed, pids = [], set()
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            _remove(parent / name)
            removed.append(parent / name)
            pids.add(m.group(1))
    if removed:
        size = len(removed)
        warnings.warn(
            UsbkitWarning(
                f"{dest}: removed {size} half-built leftover{'s' if size > 1 else ''} of an "
                f"earlier run that was stopped before it finished (process "
                f"{', '.join(sorted(pids))} on this computer, no longer running): "
                f"{', '.join(p.name for p in removed)}"
            ),
            stacklevel=2,
        )
    return removed


#: Destinations this process holds the lock of (a lock is taken once per process).
_HELD: set[str] = set()


@contextlib.contextmanager
def destination_lock(dest: str | Path, command: str = "") -> Iterator[None]:
    """Hold the lock on the output ``dest`` (a hidden file ``.NAME.usbkit-lock`` beside it,
    naming this process and computer) while the output is checked, built and swapped in.

    A second usbkit run on the same destination is refused with a message naming the run
    that holds it. A lock whose process ran on this computer and is gone is stale: it is
    removed, with the run's other leftovers (:func:`remove_leftovers`).
    """
    dest = Path(os.path.abspath(dest))
    key = str(dest)
    if key in _HELD:
        yield
        return
    lock = _lock_path(dest)
    ensure_writable_dir(dest.parent)
    me = {"pid": os.getpid(), "host": _host(), "command": command, "started": time.time()}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(other["pid"]), str(other["host"])
            except (OSError, ValueError, KeyError, TypeError):
                other, pid, host = {}, -1, ""
            if host == _host() and not _alive(pid):
                lock.unlink(missing_ok=True)  # its run was killed: stale
                continue
            if not other and time.time() - _mtime(lock) < 5:
                time.sleep(0.2)  # being written this instant
                continue
            what = f"`usbkit {other['command']}`" if other.get("command") else "a usbkit run"
            since = (
                time.strftime(" since %H:%M:%S", time.localtime(float(other["started"])))
                if isinstance(other.get("started"), int | float)
                else ""
            )
            raise UsbkitError(
                f"another run ({what}, process {pid} on {host or 'an unknown computer'}{since}) "
                "is writing this output now, and two runs on one output would replace each "
                "other's files",
                file=dest,
                fix=f"Wait until that run has finished, or choose another output name (if no "
                f"such run is going on, delete the lock file {lock})",
            ) from None
        except OSError as exc:
            raise UsbkitError(
                f"cannot lock this output ({exc.strerror or exc})",
                file=dest,
                fix="Choose a folder you can write to",
            ) from exc
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            break
    else:
        raise UsbkitError(
            "cannot lock this output: its lock file keeps changing",
            file=dest,
            fix=f"Check that no other usbkit run writes here, then delete {lock}",
        )
    _HELD.add(key)
    try:
        remove_leftovers(dest)
        yield
    finally:
        _HELD.discard(key)
        lock.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _file_state(path: Path):
    """What a file destination is, to find out later whether it changed (None: missing)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def _tree_state(path: Path):
    """What a folder destination holds (every entry's name, kind, size and time), to find
    out later whether anything was added, removed or changed (None: missing)."""
    top = _file_state(path)
    if top is None:
        return None
    if not path.is_dir() or path.is_symlink():
        return (top,)
    entries = []
    for folder, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            rel = os.path.relpath(full, path)
            entries.append((rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode))
    return (top[:2], tuple(sorted(entries)))


def _changed(dest: Path, what: str = "folder") -> UsbkitError:
    return UsbkitError(
        f"this output {what} changed while usbkit was running (something was created, added "
        f"or changed there after the command checked it), so usbkit left it as it is and "
        "discarded the new output",
        file=dest,
        fix="Run the command again once nothing else writes there, or choose another output name",
    )


def inside(path: str | Path, folder: str | Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it (symbolic links resolved),
    else None; ``Path('.')`` when it is the folder itself."""
    p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return p.relative_to(f) if p.is_relative_to(f) else None


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``dest`` if the block succeeds.

    The destination is locked meanwhile (:func:`destination_lock`), and it is replaced only
    if it is what it was when the block began: a file that appears at ``dest`` during the
    block, or changes there, is never replaced (the new file is discarded with an error).

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
    with destination_lock(dest):
        before = _file_state(dest)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(dest), suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            as_created(tmp_path)
            if _file_state(dest) != before:
                raise _changed(dest, "file")
            if before is None:
                _link_new(tmp_path, dest)
            else:
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


def _link_new(tmp: Path, dest: Path) -> None:
    """Move the file ``tmp`` to ``dest`` only if nothing is at ``dest`` (a hard link is
    made only where no name is; where the disk has no hard links, check and rename)."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise _changed(dest, "file") from None
    except OSError:
        if os.path.lexists(dest):
            raise _changed(dest, "file") from None
        os.replace(tmp, dest)
        return
    tmp.unlink(missing_ok=True)


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
    half-written folder and nothing the user had is touched. The destination is locked
    meanwhile (:func:`destination_lock`), and at the swap it must be what it was when the
    block began: a folder that appeared there, or an earlier output to which anything was
    added or changed, is left as it is and the new output is discarded with an error.

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
    parent = ensure_writable_dir(dest.parent if str(dest.parent) else Path("."))
    with destination_lock(dest):
        if not overwrite:
            refuse_nonempty(dest)
        before = _tree_state(dest)
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(dest), suffix=".tmp", dir=parent))
        try:
            yield tmp
            as_created(tmp, folder=True)
            _swap_in(tmp, dest, before, parent)
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


def _swap_in(tmp: Path, dest: Path, before, parent: Path) -> None:
    """Put the folder ``tmp`` at ``dest``, which must be as ``before`` (its state when
    checked); the earlier folder is removed only once the new one is in place."""
    if _tree_state(dest) != before:
        raise _changed(dest)
    if before is None:
        os.replace(tmp, dest)  # a folder that appeared meanwhile with files is never replaced
        return
    if dest.is_dir() and not any(dest.iterdir()):
        try:
            dest.rmdir()  # fails when a file was put in meanwhile
        except OSError:
            raise _changed(dest) from None
        os.replace(tmp, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=temporary_prefix(dest), suffix=".old", dir=parent))
    os.replace(dest, old / "previous")
    if _tree_state(old / "previous")[1:] != before[1:]:  # changed in the last instant
        os.replace(old / "previous", dest)
        old.rmdir()
        raise _changed(dest)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old / "previous", dest)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


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
def output_dir(
    dest: str | Path, command: str, *, overwrite: bool = False, inputs=()
) -> Iterator[Path]:
    """Build the whole output of ``command`` aside and swap it into ``dest`` when complete.

    The output rule of every usbkit command (docs/command-line.md#rules-every-command-follows):
    a non-empty ``dest`` is refused unless it is an earlier output of the same command and
    ``overwrite`` is given; then the earlier output stays byte-identical until the new one is
    complete, and survives a failed or interrupted run. The folder is marked as this
    command's output. An input of the command (``inputs``: its study, its detection files)
    that lies inside the earlier output is copied into the new one first (see
    :func:`keep_input`): a swap never removes the command's own input. The destination
    is locked from the check to the swap (:func:`destination_lock`).

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
    with destination_lock(dest, command):
        dest = check_output_dir(dest, command, overwrite)
        with atomic_dir(dest, overwrite=True) as tmp:
            mark_output(tmp, command)
            for path in inputs:
                keep_input(path, dest, tmp)
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


def keep_input(path: str | Path, dest: str | Path, tmp: str | Path) -> Path | None:
    """Copy an input of a command that lies inside its destination ``dest`` (an earlier
    output about to be replaced) to the same place in the new output ``tmp``, so the swap
    never removes it; return the copy, or None when ``path`` is not inside ``dest``.

    An input that is the destination itself is refused: the output cannot replace it.
    """
    rel = inside(path, dest) if Path(dest).exists() else None
    if rel is None:
        return None
    if rel == Path("."):
        raise UsbkitError(
            f"the input {path} is the output folder itself, which the new output would replace",
            file=dest,
            fix="Give another output folder (--out)",
        )
    copy = Path(tmp) / rel
    if os.path.lexists(copy):
        raise UsbkitError(
            f"the input {path} lies inside the output folder, where the new output puts its "
            f"own {rel}; replacing the folder would remove it",
            file=dest,
            fix="Copy the input out of the output folder and give that copy, or choose "
            "another output folder",
        )
    copy.parent.mkdir(parents=True, exist_ok=True)
    src = Path(os.path.realpath(path))
    if src.is_dir():
        shutil.copytree(src, copy, symlinks=True)
    else:
        shutil.copy2(src, copy)
    return copy
