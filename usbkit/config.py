"""Typed configs: reading and writing the dataclasses that hold every default once.

Each layer defines its own frozen dataclass config (``ReaderSettings``, ``SynthConfig``,
``EvalConfig``, ``ModelConfig``, ``TrainConfig``, ``ReportConfig``); this module is the one
place where such a config is turned into plain JSON types and read back, so that a config
saved in a run folder, a checkpoint or a study reads the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from contextvars import ContextVar
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


#: While a config is read by :func:`config_from_dict`, the problems its checks find (see
#: :func:`setting_problem`) are gathered here, so that every bad setting is named at once.
_GATHERED: ContextVar[list | None] = ContextVar("usbkit_setting_problems", default=None)


def setting_problem(ok: bool, message: str) -> None:
    """The check of one setting in a config's ``__post_init__``: a problem is gathered while
    :func:`config_from_dict` reads the config (all are named together), else raised."""
    if ok:
        return
    gathered = _GATHERED.get()
    if gathered is None:
        raise UsbkitError(f"invalid setting: {message}", fix="Correct this setting")
    gathered.append(message)


def _shown_value(value) -> str:
    return json.dumps(value) if isinstance(value, str | list | tuple | dict) else repr(value)


def _type_problem(name: str, value, tp) -> str | None:
    """Why ``value`` does not fit the field type ``tp`` (int, float, str, bool, tuples of
    them, ``X | None``), or None when it does (or the type is not one of these)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _type_problem(name, value, inner[0]) if len(inner) == 1 else None
    shown = _shown_value(value)
    if tp is bool:
        return None if isinstance(value, bool) else f"{name} {shown} must be true or false"
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} {shown} must be a whole number"
        return None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} {shown} must be a number"
        if not math.isfinite(value):
            return f"{name} {shown} must be a finite number"
        return None
    if tp is str:
        return None if isinstance(value, str) else f"{name} {shown} must be text"
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return f"{name} {shown} must be a list"
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            item_types = list(args)
            if len(value) != len(args):
                return f"{name} {shown} must be a list of {len(args)} values"
        for k, (v, t) in enumerate(zip(value, item_types)):
            why = _type_problem(f"{name}[{k}]", v, t)
            if why:
                return f"{name} {shown}: {why}"
    return None


def _from_dict(cls, data, source, problems: list[str], prefix: str = ""):
    """:func:`config_from_dict` that gathers every problem into ``problems`` (named with
    ``prefix``, ``model.`` for a nested config) and returns the config of the good values
    (None when even that cannot be built)."""
    if not isinstance(data, dict):
        problems.append(
            f"{prefix.rstrip('.') or 'the settings'} must be a JSON object of settings, not "
            f"{type(data).__name__}"
        )
        return None
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        problems.append(
            f"unknown {cls.__name__} setting(s) {', '.join(prefix + u for u in unknown)} "
            f"(known are {', '.join(known)}; check the spelling)"
        )
    hints = _field_types(cls)
    kwargs = {}
    for name, value in data.items():
        if name not in known:
            continue
        nested = _nested_config(hints.get(name))
        if nested is not None and isinstance(value, dict):
            value = _from_dict(nested, value, source, problems, f"{prefix}{name}.")
            if value is None:
                continue
        else:
            why = _type_problem(prefix + name, value, hints.get(name))
            if why:
                problems.append(why)
                continue
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    gathered: list[str] = []
    token = _GATHERED.set(gathered)
    try:
        config = cls(**kwargs)
    except UsbkitError as exc:
        config = None
        gathered.append(exc.message.removeprefix("invalid setting: "))
    except (TypeError, ValueError) as exc:
        config = None
        gathered.append(f"invalid {cls.__name__} settings ({exc})")
    finally:
        _GATHERED.reset(token)
    problems += [prefix + g if prefix and not g.startswith(prefix) else g for g in gathered]
    return config


def config_from_dict(cls: type[C], data: dict, *, source: str | Path | None = None) -> C:
    """Rebuild config ``cls`` from plain types, the inverse of :func:`config_to_dict`.

    Lists become tuples, nested dicts become the nested configs, keys the config does not
    know are refused with an error naming them (a misspelt setting is never ignored), and
    missing keys take the config's defaults. Every setting is checked (its type, then the
    config's own checks) and all bad ones are named in one error, with the file.

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
    >>> config_from_dict(Demo, {"size": 3, "name": 4, "colour": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    usbkit.errors.UsbkitError: 2 settings are invalid: unknown Demo setting(s) colour (...); name 4 must be text. ...
    """
    problems: list[str] = []
    config = _from_dict(cls, data, source, problems)
    if problems or config is None:
        count = len(problems)
        raise UsbkitError(
            (f"{count} settings are invalid: " if count > 1 else "a setting is invalid: ")
            + "; ".join(problems),
            file=source,
            fix="Correct "
            + ("these settings" if count > 1 else "this setting")
            + (" in the file (or give them as command-line options)" if source else ""),
        )
    return config


def load_config(cls: type[C], path: str | Path, overrides: dict | None = None) -> C:
    """Read a config saved as JSON (``config.json``, ``synth_config.json``, ...).

    ``overrides`` (settings given on the command line, a nested config's as a dict under its
    name) replace the file's before anything is checked, so the merged settings are
    checked once, every bad one named with the file."""
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
    if overrides and isinstance(data, dict):
        data = dict(data)
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
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
