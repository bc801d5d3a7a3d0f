"""A self-contained HTML scrubber page per clip: no kernel, no server, works offline.

Frames are embedded as compressed JPEG (cropped B-mode image only, no burned-in text), the
boxes and the timeline are drawn in the page, and the slider, the play button and the keys
(left/right one frame, Page Up/Down ten) work in any browser. Marks below ``min_score`` are
left out to keep the page small (the threshold sliders start at each model's threshold).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from usbkit.safeio import write_text
from usbkit.style import GT_COLOR
from usbkit.viewer.clipview import ClipView

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>usbkit scrubber: __TITLE__</title>
<style>
body{font-family:Arial,Helvetica,sans-serif;margin:16px;color:#222}
#wrap{display:flex;gap:18px;align-items:flex-start}
canvas{image-rendering:auto;border:1px solid #ccc}
.ctl{margin:6px 0} label{display:inline-block;min-width:130px}
#timeline{border:1px solid #ddd;cursor:pointer}
.legend span{display:inline-block;margin-right:12px}
</style></head><body>
<h2>__TITLE__</h2>
<div class="legend"><span style="color:__GT__">&#9632; ground truth (dashed)</span>__LEGEND__</div>
<div id="wrap"><div>
<canvas id="view" tabindex="0"></canvas>
<div class="ctl"><input id="slider" type="range" min="0" value="0" style="width:100%"></div>
<div class="ctl"><button id="play">play</button> <span id="label"></span></div>
<svg id="timeline" width="520" height="120"></svg>
</div><div id="thresholds"></div></div>
<p style="max-width:700px;font-size:13px;color:#555">Keys: &larr; / &rarr; one frame, Page Up / Page Down ten frames.
The timeline shows each model's highest score per frame; the green band marks frames where a lesion is in view.
Click the timeline to jump.</p>
<script>
const D = __DATA__;
const cv = document.getElementById('view'), ctx = cv.getContext('2d');
const slider = document.getElementById('slider'), label = document.getElementById('label');
const scale = D.scale; cv.width = D.width * scale; cv.height = D.height * scale;
slider.max = D.n - 1;
const imgs = D.frames.map(s => { const im = new Image(); im.src = 'data:image/jpeg;base64,' + s; return im; });
const thr = {}; D.models.forEach(m => thr[m.name] = m.threshold);
let cur = 0, timer = null;
function box(b, color, dashed) {
  ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dashed ? [6, 4] : []);
  ctx.strokeRect(b[0]*scale, b[1]*scale, (b[2]-b[0])*scale, (b[3]-b[1])*scale);
}
function draw() {
  const im = imgs[cur];
  if (!im.complete) { im.onload = draw; return; }
  ctx.drawImage(im, 0, 0, cv.width, cv.height);
  (D.gt[cur] || []).forEach(b => box(b, '__GT__', true));
  D.models.forEach(m => (m.marks[cur] || []).forEach(d => { if (d[4] >= thr[m.name]) box(d, m.color, false); }));
  label.textContent = 'frame ' + (cur + 1) + ' / ' + D.n + '  ' + (cur / D.fps).toFixed(2) + ' s';
  cv.dataset.frame = cur;
  document.getElementById('cursor').setAttribute('x1', X(cur));
  document.getElementById('cursor').setAttribute('x2', X(cur));
}
function go(i) { cur = Math.max(0, Math.min(D.n - 1, i)); slider.value = cur; draw(); }
slider.addEventListener('input', () => go(+slider.value));
document.addEventListener('keydown', e => {
  const k = {ArrowRight: 1, ArrowLeft: -1, PageDown: 10, PageUp: -10}[e.key];
  if (k !== undefined) { e.preventDefault(); go(cur + k); }
});
document.getElementById('play').onclick = function () {
  if (timer) { clearInterval(timer); timer = null; this.textContent = 'play'; return; }
  this.textContent = 'pause';
  timer = setInterval(() => go(cur + 1 < D.n ? cur + 1 : 0), 1000 / D.fps);
};
const T = document.getElementById('timeline'), TW = 520, TH = 120, P = 6;
function X(i) { return P + (TW - 2*P) * (D.n > 1 ? i / (D.n - 1) : 0); }
function Y(v) { return TH - P - (TH - 2*P) * v; }
let svg = '';
D.visible.forEach((v, i) => { if (v) svg += `<rect x="${X(i) - (TW-2*P)/(2*Math.max(D.n-1,1))}" y="${P}" width="${(TW-2*P)/Math.max(D.n-1,1)}" height="${TH-2*P}" fill="rgba(0,200,83,0.2)"/>`; });
D.models.forEach(m => { svg += `<polyline fill="none" stroke="${m.color}" stroke-width="2" points="${m.top.map((v, i) => X(i) + ',' + Y(v)).join(' ')}"/>`; });
svg += `<line id="cursor" x1="${P}" x2="${P}" y1="0" y2="${TH}" stroke="black" stroke-width="2"/>`;
T.innerHTML = svg;
T.addEventListener('click', e => { const r = T.getBoundingClientRect(); go(Math.round((e.clientX - r.left - P) / (TW - 2*P) * (D.n - 1))); });
const TH_DIV = document.getElementById('thresholds');
D.models.forEach(m => {
  const d = document.createElement('div'); d.className = 'ctl';
  d.innerHTML = `<label style="color:${m.color}">${m.name} &ge; <b>${m.threshold.toFixed(2)}</b></label>` +
    `<input type="range" min="${D.min_score}" max="1" step="0.01" value="${m.threshold}">`;
  d.querySelector('input').addEventListener('input', e => { thr[m.name] = +e.target.value; d.querySelector('b').textContent = (+e.target.value).toFixed(2); draw(); });
  TH_DIV.appendChild(d);
});
go(0); cv.focus();
</script></body></html>
"""


def static_scrubber_html(
    view: ClipView, min_score: float = 0.1, quality: int = 60, scale: float = 2.0
) -> str:
    """The HTML text of a static scrubber page for one clip."""
    frames = []
    for i in range(view.n):
        buf = io.BytesIO()
        Image.fromarray(np.asarray(view.clip[i])).save(buf, format="JPEG", quality=quality)
        frames.append(base64.b64encode(buf.getvalue()).decode())

    def per_frame(frame, boxes, score=None):
        out = [[] for _ in range(view.n)]
        for k, (f, b) in enumerate(zip(frame, boxes)):
            if 0 <= f < view.n and (score is None or score[k] >= min_score):
                row = [round(float(v), 1) for v in b]
                if score is not None:
                    row.append(round(float(score[k]), 3))
                out[f].append(row)
        return out

    models = [
        {
            "name": n,
            "color": view.colors[n],
            "threshold": float(max(view.thresholds[n], min_score)),
            "marks": per_frame(m.frame, m.boxes, m.score),
            "top": [round(float(v), 3) for v in view.top_scores(n)],
        }
        for n, m in view.models.items()
    ]
    data = {
        "n": view.n,
        "fps": view.fps,
        "width": view.clip.width,
        "height": view.clip.height,
        "scale": scale,
        "frames": frames,
        "gt": per_frame(view.gt.frame, view.gt.boxes),
        "visible": [int(v > 0) for v in view.visibility()],
        "models": models,
        "min_score": min_score,
    }
    legend = "".join(f'<span style="color:{m["color"]}">&#9632; {m["name"]}</span>' for m in models)
    return (
        TEMPLATE.replace("__TITLE__", f"clip {view.clip_id}")
        .replace("__GT__", GT_COLOR)
        .replace("__LEGEND__", legend)
        .replace("__DATA__", json.dumps(data, separators=(",", ":")))
    )


def write_static_scrubber(view: ClipView, path: str | Path, **kw) -> Path:
    """Write the static scrubber page of a clip to ``path`` (atomically)."""
    return write_text(path, static_scrubber_html(view, **kw))


def write_pages(
    study,
    detections: dict,
    thresholds: dict[str, float],
    folder: str | Path,
    clip_ids,
    hit: str = "center",
) -> list[Path]:
    """Write one static scrubber page per clip into ``folder``; returns the paths.

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
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shown = {n: min(t, 1.0) for n, t in thresholds.items()}
    return [
        write_static_scrubber(
            ClipView(study, cid, detections, shown, hit=hit), folder / f"{cid}.html"
        )
        for cid in clip_ids
        if cid
    ]
