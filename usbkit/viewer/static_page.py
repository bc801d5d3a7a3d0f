"""A self-contained HTML viewer page per clip: no kernel, no server, works offline.

The page runs the very same front end as the JupyterLab scrubber (``assets/viewer.js`` and
``viewer.css``, inlined), with the frames embedded as compressed images (the cropped B-mode
image only, no burned-in text) and the ground truth and marks as data: slider, keys, play,
thresholds, the timeline and previous / next miss, false positive (or mark, on clips without
annotations) all work in any browser, offline. Marks below
:data:`usbkit.viewer.clipview.MIN_SHOWN_SCORE` are left out.

Frames are stored as WebP at quality :data:`PAGE_QUALITY` (every current browser decodes it):
about half the bytes of JPEG at quality 70: a page of a clip of 40-55 frames is 0.4-0.6 MB
(docs/command-line.md#static-viewer-pages gives the measured sizes).
"""

from __future__ import annotations

import base64
from pathlib import Path

from markupsafe import Markup

from usbkit.safeio import write_text
from usbkit.style import html_template
from usbkit.viewer.clipview import ClipView

ASSETS = Path(__file__).with_name("assets")
#: Image format and quality of the frames of a static page.
PAGE_FORMAT, PAGE_QUALITY = "WEBP", 50
MIME = {"JPEG": "image/jpeg", "WEBP": "image/webp"}

#: The page and the viewer fragment are Jinja2 templates: every value is escaped (the
#: title), or written as JSON that cannot close the script (``tojson``: the clip's ids,
#: names and marks); only usbkit's own script and style go in as they are.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>usbkit viewer: {{ title }}</title>
<style>body{margin:12px;background:#fff}
.usbkit-back{font:14px sans-serif;margin:0 0 8px}</style></head><body>
{% if back %}<p class="usbkit-back"><a href="{{ back|urlpath }}">&larr; {{ back_text }}</a></p>
{% endif %}{{ viewer }}
<script type="module">document.querySelector(".usbkit-viewer").focus();</script>
</body></html>
"""

SNIPPET = """<div id="{{ element_id }}"></div>
<style>{{ css }}</style>
<script type="module">
{{ js }}
const data = {{ data|tojson }};
const raw = atob(data.frames_b64);
const bytes = new Uint8Array(raw.length);
for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
const values = {clip: data.clip, frames: bytes, offsets: data.offsets, mime: data.mime,
                frame: 0, thresholds: {}};
const handlers = {};
const model = {
  get: k => values[k],
  set: (k, v) => { values[k] = v; },
  on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
  off: () => {},
  save_changes: () => {},
  // what a kernel does in JupyterLab (a new clip, a moved frame); used by the tests
  send: (k, v) => { values[k] = v; (handlers["change:" + k] || []).forEach(f => f()); },
};
document.getElementById({{ element_id|tojson }}).usbkitModel = model;
render({model, el: document.getElementById({{ element_id|tojson }})});
</script>
"""


def static_viewer_html(
    clip: dict, frames: bytes, offsets: list[int], element_id: str, mime: str = "image/jpeg"
) -> str:
    """The viewer as a self-contained HTML fragment (its JavaScript, style and data inline):
    what a static page holds, and what the report puts where a notebook showed the widget.
    ``mime`` is the type of the frame images."""
    js = (
        (ASSETS / "viewer.js").read_text(encoding="utf-8").replace("export default { render };", "")
    )
    data = {
        "clip": clip,
        "frames_b64": base64.b64encode(frames).decode(),
        "offsets": list(offsets),
        "mime": mime,
    }
    return html_template(SNIPPET).render(
        element_id=element_id,
        css=Markup((ASSETS / "viewer.css").read_text(encoding="utf-8")),
        data=data,
        js=Markup(js),
    )


def static_page_html(view: ClipView, back: str | None = None) -> str:
    """The HTML text of the self-contained viewer page of one clip; ``back``: a link above
    the viewer to the page listing the clips (relative to this page)."""
    frames, offsets = view.encoded_frames(quality=PAGE_QUALITY, fmt=PAGE_FORMAT)
    return html_template(PAGE).render(
        title=f"clip {view.clip_id}",
        back=back,
        back_text="all clips",
        viewer=Markup(
            static_viewer_html(view.payload(), frames, offsets, "usbkit-app", MIME[PAGE_FORMAT])
        ),
    )


def write_static_page(view: ClipView, path: str | Path, back: str | None = None) -> Path:
    """Write the static viewer page of a clip to ``path`` (atomically)."""
    return write_text(path, static_page_html(view, back))


def write_pages(
    study,
    detections: dict,
    thresholds: dict[str, float],
    folder: str | Path,
    clip_ids,
    hit: str = "center",
    threshold_notes: dict[str, str] | None = None,
    annotated: bool | None = None,
    back: str | None = None,
) -> list[Path]:
    """Write one static viewer page per clip into ``folder``; returns the paths.

    Parameters
    ----------
    study : Study
        The study.
    detections : dict of str to DataFrame
        Each model's detections.
    thresholds : dict of str to float
        Starting threshold per model (e.g. ``operating_thresholds(results)``).
    folder : str or Path
        Output folder.
    clip_ids : iterable of str
        The clips.
    hit : str
        The run's hit rule.
    threshold_notes : dict of str to str, optional
        Where each starting threshold comes from (shown under its slider).
    annotated : bool, optional
        Whether the clips are annotated (default: whether the study has any lesion); when
        not, marks are shown without being called hits or false positives.
    back : str, optional
        A link above each viewer, "all clips", to this address (relative to the pages: the
        report's clip list, ``index.html``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shown = {n: min(t, 1.0) for n, t in thresholds.items()}
    return [
        write_static_page(
            ClipView(
                study,
                cid,
                detections,
                shown,
                hit=hit,
                threshold_notes=threshold_notes,
                annotated=annotated,
            ),
            folder / f"{cid}.html",
            back,
        )
        for cid in clip_ids
        if cid
    ]
