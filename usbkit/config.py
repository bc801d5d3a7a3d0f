"""Typed configs: reading and writing the dataclasses that hold every default once.

Each layer defines its own frozen dataclass config (``ReaderSettings``, ``SynthConfig``,
``EvalConfig``, ``ModelConfig``, ``TrainConfig``, ``ReportConfig``); this module is the one
place where such a config is turned into plain JSON types and read back, so that a config
saved in a run folder, a checkpoint or a study reads the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from usbkit.errors import UsbkitError

C = TypeVar("C")


def config_to_dict(config) -> dict:
    """A config as plain JSON types (tuples become lists, nested configs dicts)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _field_types(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _nested_config(tp) -> type | None:
    """The dataclass type inside an annotation such as ``ModelConfig`` or ``X | None``."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def config_from_dict(cls: type[C], data: dict, *, source: str | Path | None = None) -> C:
    """Rebuild config ``cls`` from plain types, the inverse of :func:`config_to_dict`.

    Lists become tuples, nested dicts become the nested configs, keys the config does not
    know are refused with an error naming them (a misspelt setting is never ignored), and
    missing keys take the config's defaults.

    Parameters
    ----------
    cls : dataclass type
        The config class.
    data : dict
        Its fields, as read from JSON.
    source : str or Path, optional
        The file the data came from, named in errors.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     size: tuple = (96, 112)
    ...     name: str = "frame"
    >>> config_from_dict(Demo, {"size": [64, 80]})
    Demo(size=(64, 80), name='frame')
    """
    if not isinstance(data, dict):
        raise UsbkitError(
            f"a {cls.__name__} must be a JSON object of settings, not {type(data).__name__}",
            file=source,
        )
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsbkitError(
            f"unknown {cls.__name__} setting(s): {', '.join(unknown)}; known are "
            f"{', '.join(known)}",
            file=source,
            fix="Check the spelling of each setting",
        )
    hints = _field_types(cls)
    kwargs = {}
    for name, value in data.items():
        nested = _nested_config(hints.get(name))
        if nested is not None and isinstance(value, dict):
            value = config_from_dict(nested, value, source=source)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsbkitError(f"invalid {cls.__name__} settings ({exc})", file=source) from None


def load_config(cls: type[C], path: str | Path) -> C:
    """Read a config saved as JSON (``config.json``, ``synth_config.json``, ...)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsbkitError(f"the {cls.__name__} file is missing", file=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsbkitError(
            f"this settings file cannot be read as JSON ({exc})",
            file=path,
            fix="Write it as a JSON object of settings, as usbkit saves it",
        ) from None
    return config_from_dict(cls, data, source=path)


def attribute_docs(cls) -> dict[str, str]:
    """The one-line meaning of each field, from the numpydoc ``Attributes`` of a config
    (what ``--help`` of the command line shows, so it is written once)."""
    import inspect

    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    try:
        start = lines.index("Attributes") + 2
    except ValueError:
        return out
    names: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            if " : " not in line and not line.strip().endswith(":"):
                break
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            for n in names:
                out[n] = ""
        elif line.strip() and names:
            for n in names:
                out[n] = (out[n] + " " + line.strip()).strip()
    return out
