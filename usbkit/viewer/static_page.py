"""A self-contained HTML viewer page per clip: no kernel, no server, works offline.

The page runs the very same front end as the JupyterLab scrubber (``assets/viewer.js`` and
``viewer.css``, inlined), with the frames embedded as compressed JPEG (the cropped B-mode
image only, no burned-in text) and the ground truth and marks as data: slider, keys, play,
thresholds, the timeline and next miss / next false positive all work in any browser,
offline. Marks below :data:`usbkit.viewer.clipview.MIN_SHOWN_SCORE` are left out.
"""

from __future__ import annotations

import base64
from pathlib import Path

from markupsafe import Markup

from usbkit.safeio import write_text
from usbkit.style import html_template
from usbkit.viewer.clipview import ClipView

ASSETS = Path(__file__).with_name("assets")

#: The page and the viewer fragment are Jinja2 templates: every value is escaped (the
#: title), or written as JSON that cannot close the script (``tojson``: the clip's ids,
#: names and marks); only usbkit's own script and style go in as they are.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>usbkit viewer: {{ title }}</title>
<style>body{margin:12px;background:#fff}</style></head><body>
{{ viewer }}
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
const values = {clip: data.clip, frames: bytes, offsets: data.offsets, frame: 0, thresholds: {}};
const model = {
  get: k => values[k],
  set: (k, v) => { values[k] = v; },
  on: () => {},
  off: () => {},
  save_changes: () => {},
};
render({model, el: document.getElementById({{ element_id|tojson }})});
</script>
"""


def static_viewer_html(clip: dict, frames: bytes, offsets: list[int], element_id: str) -> str:
    """The viewer as a self-contained HTML fragment (its JavaScript, style and data inline):
    what a static page holds, and what the report puts where a notebook showed the widget."""
    js = (
        (ASSETS / "viewer.js").read_text(encoding="utf-8").replace("export default { render };", "")
    )
    data = {
        "clip": clip,
        "frames_b64": base64.b64encode(frames).decode(),
        "offsets": list(offsets),
    }
    return html_template(SNIPPET).render(
        element_id=element_id,
        css=Markup((ASSETS / "viewer.css").read_text(encoding="utf-8")),
        data=data,
        js=Markup(js),
    )


def static_page_html(view: ClipView) -> str:
    """The HTML text of the self-contained viewer page of one clip."""
    frames, offsets = view.encoded_frames(quality=70)
    return html_template(PAGE).render(
        title=f"clip {view.clip_id}",
        viewer=Markup(static_viewer_html(view.payload(), frames, offsets, "usbkit-app")),
    )


def write_static_page(view: ClipView, path: str | Path) -> Path:
    """Write the static viewer page of a clip to ``path`` (atomically)."""
    return write_text(path, static_page_html(view))


def write_pages(
    study,
    detections: dict,
    thresholds: dict[str, float],
    folder: str | Path,
    clip_ids,
    hit: str = "center",
    threshold_notes: dict[str, str] | None = None,
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
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shown = {n: min(t, 1.0) for n, t in thresholds.items()}
    return [
        write_static_page(
            ClipView(study, cid, detections, shown, hit=hit, threshold_notes=threshold_notes),
            folder / f"{cid}.html",
        )
        for cid in clip_ids
        if cid
    ]
