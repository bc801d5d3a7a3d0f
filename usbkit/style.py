"""The one colour palette of usbkit: figures, the scrubber and the static pages share it.

Models get the Okabe-Ito colours (colour-blind safe) in order of appearance; the ground
truth is always green.
"""

from __future__ import annotations

#: Okabe-Ito palette, in the order models receive it.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: Ground-truth boxes and lesion bands.
GT_COLOR = "#00C853"


#: The study's arms keep their colours in every figure: the tracking arm a lighter blue
#: (it is the single-frame detector's marks, rescored), the temporal ablation a muted purple.
ARM_COLORS = {
    "single frame": OKABE_ITO[0],
    "sequence": OKABE_ITO[1],
    "single frame + tracking": OKABE_ITO[5],
    "sequence (no context)": OKABE_ITO[3],
}


def model_colors(names) -> dict[str, str]:
    """A fixed colour per model name: the study's arms their own (:data:`ARM_COLORS`), other
    names the unused palette colours in order of appearance.

    Examples
    --------
    >>> model_colors(["single frame", "sequence"])
    {'single frame': '#0072B2', 'sequence': '#D55E00'}
    >>> model_colors(["mine", "sequence"])
    {'mine': '#0072B2', 'sequence': '#D55E00'}
    """
    names = list(names)
    taken = {ARM_COLORS[n] for n in names if n in ARM_COLORS}
    free = [c for c in OKABE_ITO if c not in taken] or list(OKABE_ITO)
    out, k = {}, 0
    for n in names:
        if n in ARM_COLORS:
            out[n] = ARM_COLORS[n]
        else:
            out[n] = free[k % len(free)]
            k += 1
    return out


def rgb(hex_color: str) -> tuple[int, int, int]:
    """``'#00C853'`` -> ``(0, 200, 83)``."""
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def rgba(hex_color: str, alpha: float) -> str:
    """A CSS ``rgba(...)`` string of a palette colour."""
    r, g, b = rgb(hex_color)
    return f"rgba({r},{g},{b},{alpha})"


def _url_path(path) -> str:
    """A relative path as the URL of a link: ``/`` between parts, every other character
    that means something in a URL (``'``, ``"``, ``#``, ``?``, ``%``, spaces) quoted."""
    from pathlib import PurePath
    from urllib.parse import quote

    return quote(PurePath(str(path)).as_posix(), safe="/")


_ENV = None


def html_template(source: str):
    """A Jinja2 template for an HTML page usbkit writes; every value is escaped unless marked
    safe (``autoescape``), so an id, a model name or a file name holding ``<``, ``'`` or
    ``"`` never adds markup or script; the ``urlpath`` filter quotes a relative path for
    ``href`` and ``src``.

    Examples
    --------
    >>> html_template("<a href='{{ p|urlpath }}'>{{ p }}</a>").render(p="a'b<c>.html")
    "<a href='a%27b%3Cc%3E.html'>a&#39;b&lt;c&gt;.html</a>"
    """
    global _ENV
    if _ENV is None:
        import jinja2

        _ENV = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
        _ENV.filters["urlpath"] = _url_path
    return _ENV.from_string(source)
