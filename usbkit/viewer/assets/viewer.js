// usbkit clip viewer: the one front end of the JupyterLab scrubber and the static pages.
//
// Everything a frame change needs runs here, in the page: the frames arrive once (JPEG bytes,
// decoded to bitmaps up front), the ground truth and each model's marks arrive as data, and
// drawing, thresholds, scrubbing, playback, the timeline and the keyboard never wait for a
// kernel. The host gives a `model` with get(name), set(name, value), on(event, callback) and
// save_changes() (anywidget's model in JupyterLab, a small stand-in in the static pages).
//
// Data (model.get("clip")): {clip_id, n, fps, width, height, hit_rule, annotated,
//   lesions: [{id, frames: [f...], boxes: [[x0, y0, x1, y1]...]}],       (crop pixels)
//   models: [{name, color, threshold, threshold_note,
//             marks: {frame: [], box: [[...]], score: [], hit: [0|1] or null},
//             ratings: [best score of a mark hitting each lesion, null if none],
//             tracks: [{score, frames: [...], scores: [...], marks: [index into marks]}]}]}
// tracks are the false-positive tracks; with annotated === false (no lesion annotated in the
// clips shown) no mark is judged: marks are drawn in one style, tracks hold every mark, and
// the navigation steps from mark to mark instead of miss to miss and false positive to false
// positive.
// model.get("frames"): all frame images (JPEG or WebP) concatenated; model.get("offsets"):
// n + 1 byte offsets; model.get("mime"): their type (default image/jpeg).
//
// Annotate mode (JupyterLab only: model.get("annotate") is a boolean there): model.get("ann")
// holds the open clip's lesions as the kernel keeps them, {lesions: [{id, label, first, last,
// keys: [[frame, x0, y0, x1, y1, source] | [frame, null, null, null, null, source]]}],
// drafts: [{key, score, frames, boxes}], proposing, threshold, dirty, message, error, ...}
// (crop pixels). Drawing, dragging and the interpolation shown between key frames run here;
// each finished edit goes to the kernel as a message ({op: "draw" | "set" | ...}), which
// answers with the new "ann" (usbkit/viewer/annotate.py). Nothing is saved from here.

const GT = "#00C853";
const NOUN = { miss: "miss", fp: "false positive", mark: "mark" };
const FOCUS = "#FFD600";  // the lesion or mark the message is about
// annotate mode: one colour per lesion (in list order), the drafts' colour
const LESION_COLORS = ["#00E676", "#FF9100", "#40C4FF", "#EA80FC", "#FFFF00", "#FF5252", "#B2FF59", "#18FFFF"];
const DRAFT = "#FFAB40";
const PATHOLOGIES = ["", "benign", "malignant"];

function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value.buffer instanceof ArrayBuffer) return new Uint8Array(value.buffer, value.byteOffset || 0, value.byteLength);
  return new Uint8Array(0);
}

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function render({ model, el }) {
  const root = h("div", { class: "usbkit-viewer", tabindex: "0" });
  el.append(root);
  const state = {
    clip: null, bitmaps: [], frame: 0, playing: false, showMarks: true, fit: true,
    thresholds: {}, samples: [], played: { advanced: 0, shown: 0 },
    judged: true,  // marks judged against annotations (hit / false positive)
    focus: null,   // what the message is about: {model, kind, k, lesion | track}
    labels: [],    // the score labels of the frame drawn: {model, text, x, y, w, h} (canvas px)
    annotate: false, ann: null, les: [], sel: null, draftSel: null, drag: null, pending: null,
    dragSamples: [],
  };
  // Measurements the tests and benchmarks read (key press to painted frame, playback).
  root.usbkit = state;

  const canvas = h("canvas", { class: "usbkit-image", "aria-label": "clip frame" });
  const ctx = canvas.getContext("2d");
  const timeline = h("canvas", { class: "usbkit-timeline", "aria-label": "timeline: click to jump" });
  const tctx = timeline.getContext("2d", { willReadFrequently: true });
  const slider = h("input", { type: "range", min: "0", value: "0", class: "usbkit-slider", "aria-label": "frame" });
  const label = h("span", { class: "usbkit-label" });
  const message = h("div", { class: "usbkit-message", role: "status", "aria-live": "polite" });
  const play = h("button", { class: "usbkit-play", type: "button", title: "play / pause (space)" }, "▶ play");
  const fps = h("input", { type: "number", min: "1", max: "120", step: "1", class: "usbkit-fps", title: "playback speed, frames per second" });
  const marksBox = h("input", { type: "checkbox", checked: "" });
  const fitBox = h("input", { type: "checkbox", checked: "" });
  const legend = h("div", { class: "usbkit-legend" });
  const modelsPanel = h("div", { class: "usbkit-models" });
  const title = h("div", { class: "usbkit-title" });
  const canAnnotate = typeof model.get("annotate") === "boolean";
  const annotateBox = h("input", { type: "checkbox", class: "usbkit-annotate-toggle" });
  const annPanel = h("div", { class: "usbkit-annotate", style: "display:none" });
  const left = h("div", { class: "usbkit-left" }, canvas, timeline, legend);
  root.append(
    title,
    h("div", { class: "usbkit-main" },
      left,
      h("div", { class: "usbkit-right" },
        h("div", { class: "usbkit-row" }, play, h("label", {}, " fps ", fps)),
        h("div", { class: "usbkit-row" }, slider),
        h("div", { class: "usbkit-row" }, label),
        h("div", { class: "usbkit-row" },
          h("label", {}, marksBox, " show marks"), "  ",
          h("label", {}, fitBox, " fit to width"),
          canAnnotate ? h("label", { title: "draw and correct lesion boxes" }, "  ", annotateBox, " annotate") : ""),
        annPanel,
        modelsPanel,
        message,
        h("div", { class: "usbkit-help" },
          "Keys (click the viewer first): ← → one frame, Page Up / Page Down ten, Home / End, space plays. ",
          "Frames are numbered from 0, as in annotations.csv."))));

  // ------------------------------------------------------------------ data
  function lesionsOn(f) {
    const out = [];
    state.clip.lesions.forEach((l, i) => {
      const k = l.frames.indexOf(f);
      if (k >= 0) out.push([l.boxes[k], i]);
    });
    return out;
  }
  function topScores(m) {
    const top = new Float32Array(state.clip.n);
    m.marks.frame.forEach((f, k) => { if (f < top.length) top[f] = Math.max(top[f], m.marks.score[k]); });
    return top;
  }
  function load() {
    const clip = model.get("clip");
    if (!clip || !clip.n) return;
    state.clip = clip;
    state.judged = clip.annotated !== false;
    state.frame = Math.min(state.frame, clip.n - 1);
    // a message and an outline belong to the clip they were about
    state.focus = null;
    say("");
    const saved = model.get("thresholds") || {};
    state.thresholds = {};
    clip.models.forEach(m => { state.thresholds[m.name] = saved[m.name] ?? m.threshold; m.top = topScores(m); });
    slider.max = String(clip.n - 1);
    fps.value = String(Math.round(clip.fps));
    title.textContent = `clip ${clip.clip_id} · ${clip.n} frames at ${clip.fps.toFixed(1)} fps · ` +
      (state.judged ? `marks judged by the hit rule "${clip.hit_rule}"`
        : "no annotations: marks are shown, not judged");
    buildLegend();
    buildModels();
    setTitle();
    buildAnnPanel();
    const bytes = bytesOf(model.get("frames"));
    const offsets = model.get("offsets") || [];
    const mime = model.get("mime") || "image/jpeg";
    const token = {};
    state.loadToken = token;
    state.bitmaps = new Array(clip.n).fill(null);
    for (let i = 0; i < clip.n; i++) {
      const blob = new Blob([bytes.subarray(offsets[i], offsets[i + 1])], { type: mime });
      createImageBitmap(blob).then(bm => {
        if (state.loadToken !== token) return;
        state.bitmaps[i] = bm;
        if (i === state.frame) draw();
      });
    }
    layout();
    go(state.frame, false);
  }

  function buildLegend() {
    if (!state.judged) {
      legend.replaceChildren(
        ...state.clip.models.map(m => h("span", {},
          h("i", { style: `border:2px solid ${m.color}` }), ` ${m.name}: mark`)),
        h("span", { class: "usbkit-note" },
          "no annotations, so no mark is called a hit or a false positive; numbers beside a mark: its score"));
      return;
    }
    legend.replaceChildren(
      h("span", {}, h("i", { style: `border:3px solid ${GT}` }), " ground truth"),
      ...state.clip.models.map(m => h("span", {},
        h("i", { style: `border:2px solid ${m.color}` }), ` ${m.name}: hit  `,
        h("i", { style: `border:2px dashed ${m.color}` }), " false positive")),
      h("span", { class: "usbkit-note" }, "numbers beside a mark: its score"));
  }

  function buildModels() {
    modelsPanel.replaceChildren();
    state.clip.models.forEach(m => {
      const value = h("b", {}, state.thresholds[m.name].toFixed(2));
      const s = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: String(state.thresholds[m.name]), "aria-label": `${m.name} threshold` });
      s.addEventListener("input", () => {
        state.thresholds[m.name] = +s.value;
        value.textContent = (+s.value).toFixed(2);
        draw();
        drawTimeline();
        model.set("thresholds", { ...state.thresholds });
        model.save_changes();
      });
      const button = (kind, dir) => h("button", {
        type: "button", class: "usbkit-jump", "data-kind": kind, "data-dir": String(dir),
        onclick: () => jump(m, kind, dir),
      }, dir < 0 ? `◀ previous ${NOUN[kind]}` : `next ${NOUN[kind]} ▶`);
      const kinds = state.judged ? ["miss", "fp"] : ["mark"];
      modelsPanel.append(h("div", { class: "usbkit-model", style: `border-left:5px solid ${m.color}` },
        h("div", {}, h("span", { style: `color:${m.color};font-weight:bold` }, m.name), " shows marks ≥ ", value),
        s,
        m.threshold_note ? h("div", { class: "usbkit-note" }, m.threshold_note) : "",
        ...kinds.map(kind => h("div", { class: "usbkit-nav" }, button(kind, -1), " ", button(kind, 1)))));
    });
  }

  // ------------------------------------------------------------------ drawing
  function layout() {
    if (!state.clip) return;
    const { width, height } = state.clip;
    const total = root.clientWidth || 800;
    const side = total >= 760 ? 300 + 24 : 0;  // the controls beside the image when there is room
    const avail = Math.max(200, total - side - 12);
    const maxHeight = Math.max(240, (window.innerHeight || 900) - 260);
    const scale = state.fit ? Math.min(avail / width, maxHeight / height) : Math.max(1, Math.floor(Math.min(avail / width, 3)));
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${Math.round(width * scale)}px`;
    canvas.style.height = `${Math.round(height * scale)}px`;
    canvas.width = Math.round(width * scale * dpr);
    canvas.height = Math.round(height * scale * dpr);
    state.scale = scale * dpr;
    const tw = Math.round(width * scale);
    left.style.width = `${tw}px`;
    timeline.style.width = `${tw}px`;
    timeline.style.height = "110px";
    timeline.width = Math.round(tw * dpr);
    timeline.height = Math.round(110 * dpr);
    state.tdpr = dpr;
    draw();
    drawTimeline();
  }

  function boxPath(b, s) {
    return [b[0] * s, b[1] * s, (b[2] - b[0]) * s, (b[3] - b[1]) * s];
  }

  function draw() {
    const clip = state.clip;
    if (!clip) return;
    const f = state.frame;
    const s = state.scale;
    const bm = state.bitmaps[f];
    if (bm) ctx.drawImage(bm, 0, 0, canvas.width, canvas.height);
    else { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); }
    const dpr = state.tdpr || 1;
    const tag = drawFocus(f, s, dpr);  // under the marks, so that their scores stay readable
    state.labels = [];
    if (state.showMarks) {
      ctx.font = `${Math.round(11 * dpr)}px Arial, sans-serif`;
      const taken = tag ? [tag] : [];  // label places already used on this frame
      clip.models.forEach(m => {
        const t = state.thresholds[m.name];
        m.marks.frame.forEach((mf, k) => {
          if (mf !== f || m.marks.score[k] < t) return;
          const [x, y, w, hgt] = boxPath(m.marks.box[k], s);
          ctx.strokeStyle = m.color;
          ctx.lineWidth = 2 * dpr;
          ctx.setLineDash(!state.judged || m.marks.hit[k] ? [] : [6 * dpr, 4 * dpr]);
          ctx.strokeRect(x, y, w, hgt);
          ctx.setLineDash([]);
          const text = m.marks.score[k].toFixed(2);
          const r = placeLabel(taken, x, y, hgt, ctx.measureText(text).width + 4 * dpr, 13 * dpr);
          taken.push(r);
          state.labels.push({ model: m.name, text, color: m.color, ...r });
        });
      });
    }
    if (state.annotate) {
      drawAnnotations(f, s, dpr);
      label.textContent = `frame ${f} of 0–${clip.n - 1} · ${(f / clip.fps).toFixed(2)} s · ${annLabel(f)}`;
      if (+slider.value !== f) slider.value = String(f);
      root.dataset.frame = String(f);
      drawCursor();
      return;
    }
    // ground truth on top, readable however small the lesion: a dark halo under a thick green
    // line, and corner brackets around boxes smaller than 14 screen pixels
    for (const [b] of lesionsOn(f)) {
      let [x, y, w, hgt] = boxPath(b, s);
      ctx.setLineDash([]);
      ctx.strokeStyle = "rgba(0,0,0,0.7)";
      ctx.lineWidth = 5 * dpr;
      ctx.strokeRect(x, y, w, hgt);
      ctx.strokeStyle = GT;
      ctx.lineWidth = 2.5 * dpr;
      ctx.strokeRect(x, y, w, hgt);
      if (w < 14 * dpr || hgt < 14 * dpr) {
        const cx = x + w / 2, cy = y + hgt / 2, r = 12 * dpr, a = 5 * dpr;
        ctx.beginPath();
        for (const [sx, sy] of [[-1, -1], [1, -1], [1, 1], [-1, 1]]) {
          ctx.moveTo(cx + sx * r, cy + sy * (r - a));
          ctx.lineTo(cx + sx * r, cy + sy * r);
          ctx.lineTo(cx + sx * (r - a), cy + sy * r);
        }
        ctx.stroke();
      }
    }
    // the scores last, over the boxes, so that no line runs through one
    ctx.font = `${Math.round(11 * dpr)}px Arial, sans-serif`;
    for (const r of state.labels) {
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.fillStyle = r.color === "#0072B2" ? "#8fd3ff" : r.color;
      ctx.fillText(r.text, r.x + 2 * dpr, r.y + r.h - 3 * dpr);
    }
    const inView = lesionsOn(f).length;
    const seen = !state.judged ? "not annotated"
      : inView ? `${inView} lesion${inView > 1 ? "s" : ""} in view` : "no lesion in view";
    label.textContent = `frame ${f} of 0–${clip.n - 1} · ${(f / clip.fps).toFixed(2)} s · ${seen}`;
    if (+slider.value !== f) slider.value = String(f);
    root.dataset.frame = String(f);
    drawCursor();
  }

  // Where a mark's score label goes: just above its box's top-left corner; when another label
  // of this frame is there already (two models marking the same lesion, whose boxes nearly
  // coincide), the next row up, then the rows just below the box; always inside the image.
  function placeLabel(taken, x, y, hgt, w, lh) {
    const W = canvas.width, H = canvas.height;
    const lx = Math.max(0, Math.min(x, W - w));
    const rows = [];
    for (let j = 0; j < 4; j++) rows.push(y - lh * (j + 1));  // above the box, upwards
    for (let j = 0; j < 4; j++) rows.push(y + hgt + lh * j);  // below it, downwards
    const fits = rows.map(ly => Math.max(0, Math.min(ly, H - lh)));
    const free = r => !taken.some(o => r.x < o.x + o.w && o.x < r.x + r.w && r.y < o.y + o.h && o.y < r.y + r.h);
    for (const ly of fits) {
      const r = { x: lx, y: ly, w, h: lh };
      if (free(r)) return r;
    }
    return { x: lx, y: fits[0], w, h: lh };  // a crowded frame: the usual place
  }

  // the lesion or mark the message is about, outlined on every frame it is on: a yellow ring
  // outside its box and a tag, so that with two lesions in view the one meant is plain
  function focusBox(f) {
    const fo = state.focus;
    if (!fo) return null;
    if (fo.lesion !== undefined) {
      const l = state.clip.lesions[fo.lesion];
      const k = l ? l.frames.indexOf(f) : -1;
      return k >= 0 ? l.boxes[k] : null;
    }
    const m = state.clip.models.find(x => x.name === fo.model);
    const tr = m && m.tracks[fo.track];
    if (!tr || !tr.marks) return null;
    const t = state.thresholds[m.name];
    const k = tr.marks.find(i => m.marks.frame[i] === f && m.marks.score[i] >= t);
    return k === undefined ? null : m.marks.box[k];
  }
  // returns the place of its tag (so that score labels keep clear of it), or null
  function drawFocus(f, s, dpr) {
    const b = focusBox(f);
    if (!b) return null;
    const [x, y, w, hgt] = boxPath(b, s);
    const g = 5 * dpr;
    ctx.setLineDash([]);
    ctx.strokeStyle = "rgba(0,0,0,0.7)";
    ctx.lineWidth = 4 * dpr;
    ctx.strokeRect(x - g, y - g, w + 2 * g, hgt + 2 * g);
    ctx.strokeStyle = FOCUS;
    ctx.lineWidth = 2 * dpr;
    ctx.strokeRect(x - g, y - g, w + 2 * g, hgt + 2 * g);
    const text = state.focus.tag;
    ctx.font = `bold ${Math.round(11 * dpr)}px Arial, sans-serif`;
    const tw = ctx.measureText(text).width + 6 * dpr;
    const ty = Math.min(canvas.height - 15 * dpr, y + hgt + g + 2 * dpr);
    ctx.fillStyle = "rgba(0,0,0,0.75)";
    ctx.fillRect(x - g, ty, tw, 15 * dpr);
    ctx.fillStyle = FOCUS;
    ctx.fillText(text, x - g + 3 * dpr, ty + 11 * dpr);
    return { x: x - g, y: ty, w: tw, h: 15 * dpr };
  }

  function tx(f) {
    const W = timeline.width, pad = 40 * (state.tdpr || 1);
    return pad + (W - pad - 10 * (state.tdpr || 1)) * (state.clip.n > 1 ? f / (state.clip.n - 1) : 0);
  }

  function drawTimeline() {
    const clip = state.clip;
    if (!clip) return;
    const dpr = state.tdpr || 1, W = timeline.width, H = timeline.height;
    const top = 8 * dpr, bottom = H - 22 * dpr, pad = 40 * dpr;
    const ty = v => bottom - (bottom - top) * v;
    tctx.clearRect(0, 0, W, H);
    tctx.fillStyle = "#fff";
    tctx.fillRect(0, 0, W, H);
    const step = clip.n > 1 ? (tx(1) - tx(0)) : (W - pad);
    // lesion bands: where each lesion is in view
    if (!state.annotate) clip.lesions.forEach(l => {
      tctx.fillStyle = "rgba(0,200,83,0.18)";
      l.frames.forEach(f => tctx.fillRect(tx(f) - step / 2, top, step, bottom - top));
    });
    // axis
    tctx.strokeStyle = "#888";
    tctx.lineWidth = dpr;
    tctx.beginPath();
    tctx.moveTo(pad, bottom); tctx.lineTo(W - 10 * dpr, bottom);
    tctx.moveTo(pad, top); tctx.lineTo(pad, bottom);
    tctx.stroke();
    tctx.fillStyle = "#333";
    tctx.font = `${Math.round(10 * dpr)}px Arial, sans-serif`;
    const every = Math.max(1, Math.ceil(clip.n / 12 / 5) * 5);
    for (let f = 0; f < clip.n; f += every) {
      tctx.fillText(String(f), tx(f) - 4 * dpr, H - 6 * dpr);
      tctx.fillRect(tx(f), bottom, dpr, 4 * dpr);
    }
    tctx.fillText("1", 4 * dpr, ty(1) + 4 * dpr);
    tctx.fillText("0", 4 * dpr, ty(0));
    tctx.fillText("score", 4 * dpr, ty(0.5));
    clip.models.forEach(m => {
      tctx.strokeStyle = m.color;
      tctx.lineWidth = 2 * dpr;
      tctx.beginPath();
      m.top.forEach((v, f) => (f ? tctx.lineTo(tx(f), ty(v)) : tctx.moveTo(tx(f), ty(v))));
      tctx.stroke();
      tctx.setLineDash([5 * dpr, 4 * dpr]);
      tctx.lineWidth = dpr;
      tctx.beginPath();
      const t = Math.min(1, state.thresholds[m.name]);
      tctx.moveTo(pad, ty(t)); tctx.lineTo(W - 10 * dpr, ty(t));
      tctx.stroke();
      tctx.setLineDash([]);
    });
    if (state.annotate) drawLanes(top, step, dpr);
    state.timelineImage = tctx.getImageData(0, 0, W, H);
    drawCursor();
  }

  function drawCursor() {
    if (!state.timelineImage) return;
    tctx.putImageData(state.timelineImage, 0, 0);
    const x = tx(state.frame);
    tctx.strokeStyle = "#000";
    tctx.lineWidth = 2 * (state.tdpr || 1);
    tctx.beginPath();
    tctx.moveTo(x, 0); tctx.lineTo(x, timeline.height);
    tctx.stroke();
  }

  // ------------------------------------------------------------------ annotate mode
  // The kernel owns the lesions (state.ann, from model "ann"); here they are shown, with the
  // boxes between key frames interpolated as the kernel does, and edited by mouse and keys.
  function lesionFrames(l) {
    const m = new Map(), ks = l.keys;
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i];
      if (k[1] === null) continue;
      const b = k.slice(1, 5);
      m.set(k[0], { box: b, key: true, src: k[5] });
      const nx = ks[i + 1];
      if (!nx) continue;
      for (let g = k[0] + 1; g < nx[0]; g++) {
        const a = (g - k[0]) / (nx[0] - k[0]);
        const box = nx[1] === null ? b : b.map((u, j) => u + a * (nx[j + 1] - u));
        m.set(g, { box, key: false, src: "interpolated" });
      }
    }
    return m;
  }
  function colorOf(i) { return LESION_COLORS[i % LESION_COLORS.length]; }
  function annLoad() {
    const ann = model.get("ann") || {};
    const before = new Set(state.les.map(l => l.id));
    state.ann = ann;
    state.les = (ann.lesions || []).map((l, i) => ({ ...l, color: colorOf(i), at: lesionFrames(l) }));
    state.pending = null;
    if (ann.touched !== undefined && ann.touched !== null && state.les.some(l => l.id === String(ann.touched))) {
      state.sel = String(ann.touched);
    } else if (state.sel !== null && !state.les.some(l => l.id === state.sel)) {
      state.sel = null;
    }
    if (ann.op === "draw" && !before.size && state.les.length === 1) state.sel = state.les[0].id;
    if (state.draftSel && !(ann.drafts || []).some(d => d.key === state.draftSel)) state.draftSel = null;
    if (state.annotate) {
      if (ann.message !== undefined) {
        message.textContent = ann.message || "";
        message.classList.toggle("usbkit-error", !!ann.error);
      }
      buildAnnPanel();
      draw();
      drawTimeline();
    }
  }
  function selected() { return state.les.find(l => l.id === state.sel) || null; }
  function send(msg) { model.send(msg); }

  function annLabel(f) {
    const on = state.les.filter(l => l.at.has(f));
    const sel = selected();
    let t = on.length ? `${on.length} lesion${on.length > 1 ? "s" : ""} here` : "no lesion here";
    if (sel) {
      const a = sel.at.get(f);
      t += ` · lesion ${sel.id}: ` + (a ? (a.key ? `key frame (${a.src})` : "interpolated") : "not in view");
    }
    return t;
  }

  function drawAnnotations(f, s, dpr) {
    ctx.font = `${Math.round(11 * dpr)}px Arial, sans-serif`;
    // the detector's drafts: dashed, with their score
    if (state.ann && state.ann.proposing) {
      (state.ann.drafts || []).forEach(d => {
        const k = d.frames.indexOf(f);
        if (k < 0) return;
        const [x, y, w, hh] = boxPath(d.boxes[k], s);
        const on = d.key === state.draftSel;
        ctx.strokeStyle = DRAFT;
        ctx.lineWidth = (on ? 3 : 1.5) * dpr;
        ctx.setLineDash([4 * dpr, 3 * dpr]);
        ctx.strokeRect(x, y, w, hh);
        ctx.setLineDash([]);
        const text = `draft ${d.score.toFixed(2)}` + (on ? " · A accept, X reject" : "");
        ctx.fillStyle = "rgba(0,0,0,0.65)";
        ctx.fillRect(x, y + hh, ctx.measureText(text).width + 4 * dpr, 13 * dpr);
        ctx.fillStyle = DRAFT;
        ctx.fillText(text, x + 2 * dpr, y + hh + 10 * dpr);
      });
    }
    state.les.forEach(l => {
      let a = l.at.get(f);
      const isSel = l.id === state.sel;
      if (state.pending && state.pending.lesion === l.id && state.pending.frame === f) a = { box: state.pending.box, key: true, src: "drawn" };
      if (state.drag && state.drag.lesion === l.id && state.drag.mode !== "draw") a = { box: state.drag.box, key: true, src: "drawn" };
      if (!a) return;
      const [x, y, w, hh] = boxPath(a.box, s);
      ctx.setLineDash(a.key ? [] : [5 * dpr, 4 * dpr]);
      if (isSel) {
        ctx.strokeStyle = "rgba(0,0,0,0.8)";
        ctx.lineWidth = 5 * dpr;
        ctx.strokeRect(x, y, w, hh);
      }
      ctx.strokeStyle = l.color;
      ctx.lineWidth = (a.key ? 2.5 : 1.5) * dpr;
      ctx.strokeRect(x, y, w, hh);
      ctx.setLineDash([]);
      const text = `${l.id}${a.key ? " key" : ""}`;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(x, y - 13 * dpr, ctx.measureText(text).width + 4 * dpr, 13 * dpr);
      ctx.fillStyle = l.color;
      ctx.fillText(text, x + 2 * dpr, y - 3 * dpr);
      if (isSel) {
        ctx.fillStyle = "#fff";
        for (const [hx, hy] of [[x, y], [x + w, y], [x, y + hh], [x + w, y + hh]]) {
          ctx.fillRect(hx - 3 * dpr, hy - 3 * dpr, 6 * dpr, 6 * dpr);
        }
      }
    });
    const d = state.drag;
    if (d && d.mode === "draw" && d.box) {
      const [x, y, w, hh] = boxPath(d.box, s);
      ctx.strokeStyle = "#FFFFFF";
      ctx.lineWidth = 2 * dpr;
      ctx.strokeRect(x, y, w, hh);
    }
    if (state.pending && state.pending.lesion === null && state.pending.frame === f) {
      const [x, y, w, hh] = boxPath(state.pending.box, s);
      ctx.strokeStyle = "#FFFFFF";
      ctx.lineWidth = 2 * dpr;
      ctx.strokeRect(x, y, w, hh);
    }
  }

  // timeline: one lane per lesion (where it is in view; key frames as ticks), drafts dashed
  function drawLanes(top, step, dpr) {
    const lane = 7 * dpr;
    state.les.forEach((l, i) => {
      const y = top + i * (lane + 2 * dpr);
      tctx.fillStyle = l.color;
      l.at.forEach((a, f) => tctx.fillRect(tx(f) - step / 2, y, Math.max(step, dpr), lane));
      tctx.fillStyle = "#000";
      l.keys.forEach(k => {
        const x = tx(k[0]);
        if (k[1] === null) { tctx.fillRect(x - dpr, y - dpr, 2 * dpr, lane + 2 * dpr); return; }
        tctx.beginPath();
        tctx.moveTo(x, y - dpr); tctx.lineTo(x + 3 * dpr, y + lane / 2);
        tctx.lineTo(x, y + lane + dpr); tctx.lineTo(x - 3 * dpr, y + lane / 2);
        tctx.fill();
      });
      if (l.id === state.sel) {
        tctx.strokeStyle = "#000";
        tctx.lineWidth = dpr;
        tctx.strokeRect(tx(l.first) - step / 2, y - dpr, tx(l.last) - tx(l.first) + step, lane + 2 * dpr);
      }
    });
    if (state.ann && state.ann.proposing) {
      const y0 = top + state.les.length * (lane + 2 * dpr) + 2 * dpr;
      (state.ann.drafts || []).forEach((d, i) => {
        const y = y0 + i * 5 * dpr;
        tctx.fillStyle = d.key === state.draftSel ? "#E65100" : DRAFT;
        d.frames.forEach(f => tctx.fillRect(tx(f) - step / 2, y, Math.max(step * 0.7, dpr), 3 * dpr));
      });
    }
  }

  function buildAnnPanel() {
    annPanel.style.display = state.annotate ? "" : "none";
    modelsPanel.style.display = state.annotate ? "none" : "";
    if (!state.annotate) return;
    const ann = state.ann || {};
    const btn = (text, title, fn, cls = "") => h("button", { type: "button", class: `usbkit-jump ${cls}`, title, onclick: fn }, text);
    const rows = state.les.map(l => {
      const pick = h("select", { "aria-label": `pathology of lesion ${l.id}`, class: "usbkit-pathology" },
        ...PATHOLOGIES.map(p => {
          const o = h("option", { value: p }, p || "pathology?");
          if ((l.label || "") === p) o.selected = true;
          return o;
        }));
      if (l.label && !PATHOLOGIES.includes(l.label)) {
        const o = h("option", { value: l.label }, l.label); o.selected = true; pick.append(o);
      }
      pick.addEventListener("change", () => send({ op: "label", lesion: l.id, label: pick.value }));
      pick.addEventListener("keydown", e => e.stopPropagation());
      const tr = h("tr", { class: l.id === state.sel ? "usbkit-sel" : "", "data-lesion": l.id },
        h("td", {}, h("i", { style: `background:${l.color}` }), ` ${l.id}`),
        h("td", {}, `${l.first}–${l.last}`),
        h("td", {}, `${l.keys.filter(k => k[1] !== null).length}`),
        h("td", {}, pick),
        h("td", {}, btn("✕", `delete lesion ${l.id} (Shift+Delete)`, () => send({ op: "delete_lesion", lesion: l.id }))));
      tr.addEventListener("click", e => {
        if (e.target.tagName === "SELECT" || e.target.tagName === "BUTTON" || e.target.tagName === "OPTION") return;
        state.sel = l.id; state.draftSel = null;
        buildAnnPanel();
        if (!l.at.has(state.frame)) go(l.first); else { draw(); drawTimeline(); }
      });
      return tr;
    });
    const drafts = (ann.drafts || []).map((d, i) => h("div", { class: `usbkit-draft ${d.key === state.draftSel ? "usbkit-sel" : ""}` },
      `draft ${i + 1}: frames ${d.frames[0]}–${d.frames[d.frames.length - 1]}, score ${d.score.toFixed(2)} `,
      btn("go", "show it", () => { state.draftSel = d.key; state.sel = null; buildAnnPanel(); go(d.frames[0]); drawTimeline(); }),
      btn("accept", "accept as a lesion (A)", () => send({ op: "accept", key: d.key }), "usbkit-accept"),
      btn("reject", "reject (X)", () => send({ op: "reject", key: d.key }), "usbkit-reject")));
    const thr = h("input", { type: "range", min: "0.05", max: "1", step: "0.01", value: String(ann.threshold ?? 0.5), class: "usbkit-draft-threshold", "aria-label": "draft threshold" });
    const thrValue = h("b", {}, (+thr.value).toFixed(2));
    thr.addEventListener("input", () => { thrValue.textContent = (+thr.value).toFixed(2); });
    thr.addEventListener("change", () => send({ op: "propose", threshold: +thr.value }));
    const dirty = ann.dirty ? h("span", { class: "usbkit-dirty" }, `unsaved changes${(ann.changed_clips || []).length ? " (clip " + ann.changed_clips.join(", ") + ")" : ""}`)
      : h("span", { class: "usbkit-note" }, "all saved");
    annPanel.replaceChildren(
      h("div", { class: "usbkit-row" },
        btn("↶ undo", "undo (Z)", () => send({ op: "undo" }), "usbkit-undo"),
        btn("↷ redo", "redo (Y)", () => send({ op: "redo" }), "usbkit-redo"),
        btn("save", "save annotations.csv (S)", () => send({ op: "save" }), "usbkit-save"),
        btn("reload", "read annotations.csv again from disk (drops unsaved edits)", () => {
          if (!ann.dirty || window.confirm("Reload from disk and drop the unsaved edits?")) send({ op: "reload" });
        }), " ", dirty),
      h("table", { class: "usbkit-lesions" },
        h("tr", {}, h("th", {}, "lesion"), h("th", {}, "frames"), h("th", {}, "keys"), h("th", {}, "pathology"), h("th", {}, "")),
        ...rows),
      rows.length ? "" : h("div", { class: "usbkit-note" }, "No lesion yet: drag on the frame to draw one."),
      ann.can_propose ? h("div", { class: "usbkit-drafts" },
        h("div", {}, btn(ann.proposing ? "propose again" : "propose from detections", `draft lesions from ${ann.propose_source} (P)`, () => send({ op: "propose", threshold: +thr.value }), "usbkit-propose"),
          ann.proposing ? btn("hide drafts", "hide the drafts", () => send({ op: "hide_drafts" })) : ""),
        h("div", {}, "drafts at score ≥ ", thrValue, thr),
        ...drafts) : "",
      h("div", { class: "usbkit-help" },
        "Drag on the frame: a new lesion, or a key frame of the selected lesion where it has no box. ",
        "Drag a box to move it, a corner to resize it: it becomes a key frame. ",
        "Keys: N new lesion · Tab next lesion · C confirm the interpolated box · Delete key frame · ",
        "Shift+Delete lesion · E end the lesion here (out of view from this frame on) · ",
        "J / K previous / next key frame · Z undo · Y redo · S save · P propose · A / X accept / reject the draft · Esc deselect. ",
        "Solid boxes: key frames; dashed: interpolated between them."));
  }

  function cropPoint(e) {
    const r = canvas.getBoundingClientRect();
    const k = canvas.width / r.width / state.scale;
    const x = Math.max(0, Math.min(state.clip.width, (e.clientX - r.left) * k));
    const y = Math.max(0, Math.min(state.clip.height, (e.clientY - r.top) * k));
    return [x, y];
  }
  function hitLesion(p) {
    const f = state.frame, tol = 6 * (state.tdpr || 1) / state.scale;
    const order = [...state.les].sort((a, b) => (b.id === state.sel) - (a.id === state.sel));
    for (const l of order) {
      const a = l.at.get(f);
      if (!a) continue;
      const [x0, y0, x1, y1] = a.box;
      if (l.id === state.sel) {
        const corners = [[x0, y0, "tl"], [x1, y0, "tr"], [x0, y1, "bl"], [x1, y1, "br"]];
        for (const [cx, cy, c] of corners) if (Math.abs(p[0] - cx) <= tol && Math.abs(p[1] - cy) <= tol) return { l, mode: c, box: a.box };
      }
      if (p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1) return { l, mode: "move", box: a.box };
    }
    return null;
  }
  function hitDraft(p) {
    if (!state.ann || !state.ann.proposing) return null;
    for (const d of state.ann.drafts || []) {
      const k = d.frames.indexOf(state.frame);
      if (k < 0) continue;
      const [x0, y0, x1, y1] = d.boxes[k];
      if (p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1) return d;
    }
    return null;
  }
  function onCanvasDown(e) {
    if (!state.annotate || e.button !== 0) return;
    e.preventDefault();
    root.focus({ preventScroll: true });
    const p = cropPoint(e);
    const hit = hitLesion(p);
    if (hit) {
      state.sel = hit.l.id; state.draftSel = null;
      state.drag = { mode: hit.mode, lesion: hit.l.id, start: p, orig: hit.box.slice(), box: hit.box.slice(), moved: false };
      buildAnnPanel();
    } else {
      const d = hitDraft(p);
      if (d) { state.draftSel = d.key; state.sel = null; buildAnnPanel(); draw(); drawTimeline(); return; }
      state.drag = { mode: "draw", start: p, box: null, moved: false };
    }
    draw();
  }
  function onDragMove(e) {
    const d = state.drag;
    if (!d) return;
    const t0 = e.timeStamp;
    const p = cropPoint(e);
    const dx = p[0] - d.start[0], dy = p[1] - d.start[1];
    if (Math.abs(dx) + Math.abs(dy) > 0.5) d.moved = true;
    if (d.mode === "draw") d.box = [Math.min(d.start[0], p[0]), Math.min(d.start[1], p[1]), Math.max(d.start[0], p[0]), Math.max(d.start[1], p[1])];
    else if (d.mode === "move") {
      const o = d.orig, w = o[2] - o[0], hh = o[3] - o[1];
      const x0 = Math.max(0, Math.min(state.clip.width - w, o[0] + dx)), y0 = Math.max(0, Math.min(state.clip.height - hh, o[1] + dy));
      d.box = [x0, y0, x0 + w, y0 + hh];
    } else {
      const b = d.orig.slice();
      if (d.mode[1] === "l") b[0] = p[0]; else b[2] = p[0];
      if (d.mode[0] === "t") b[1] = p[1]; else b[3] = p[1];
      d.box = [Math.min(b[0], b[2]), Math.min(b[1], b[3]), Math.max(b[0], b[2]), Math.max(b[1], b[3])];
    }
    draw();
    requestAnimationFrame(() => {
      state.dragSamples.push(performance.now() - t0);
      if (state.dragSamples.length > 500) state.dragSamples.shift();
    });
  }
  function onDragUp() {
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    const round = b => b.map(v => Math.round(v * 100) / 100);
    if (d.mode === "draw") {
      if (!d.box || d.box[2] - d.box[0] < 2 || d.box[3] - d.box[1] < 2) { draw(); return; }
      const sel = selected();
      const lesion = sel && !sel.at.has(state.frame) ? sel.id : null;
      state.pending = { lesion, frame: state.frame, box: d.box };
      send({ op: "draw", frame: state.frame, box: round(d.box), lesion });
    } else if (d.moved && d.box) {
      state.pending = { lesion: d.lesion, frame: state.frame, box: d.box };
      send({ op: "set", lesion: d.lesion, frame: state.frame, box: round(d.box) });
    }
    draw();
  }
  function keyFrames(l) { return l.keys.filter(k => k[1] !== null).map(k => k[0]); }
  // the annotate mode's keys; true when the key was taken
  function annotateKey(e) {
    const k = e.key, f = state.frame, sel = selected();
    const low = k.length === 1 ? k.toLowerCase() : k;
    const draft = () => {
      const ds = (state.ann && state.ann.proposing && state.ann.drafts) || [];
      return ds.find(d => d.key === state.draftSel) || ds.find(d => d.frames.includes(f));
    };
    if (low === "z" && !e.shiftKey) send({ op: "undo" });
    else if (low === "y" || (low === "z" && e.shiftKey)) send({ op: "redo" });
    else if (low === "s") send({ op: "save" });
    else if (low === "n") { state.sel = null; state.draftSel = null; buildAnnPanel(); draw(); drawTimeline(); }
    else if (k === "Escape") { state.drag = null; state.sel = null; state.draftSel = null; buildAnnPanel(); draw(); drawTimeline(); }
    else if (k === "Tab") {
      if (!state.les.length) return true;
      const i = state.les.findIndex(l => l.id === state.sel);
      const n = state.les.length;
      const nx = state.les[i < 0 ? 0 : (i + (e.shiftKey ? n - 1 : 1)) % n];
      state.sel = nx.id; buildAnnPanel();
      if (!nx.at.has(f)) go(nx.first); else { draw(); drawTimeline(); }
    }
    else if (low === "p" && state.ann && state.ann.can_propose) send({ op: "propose", threshold: state.ann.threshold });
    else if (low === "a") { const d = draft(); if (d) send({ op: "accept", key: d.key }); }
    else if (low === "x") { const d = draft(); if (d) send({ op: "reject", key: d.key }); }
    else if (!sel) return ["c", "e", "j", "k", "Delete", "Backspace", "Enter"].includes(low);
    else if (low === "c" || k === "Enter") send({ op: "confirm", lesion: sel.id, frame: f });
    else if (low === "e") send({ op: "end", lesion: sel.id, frame: f });
    else if ((k === "Delete" || k === "Backspace") && e.shiftKey) send({ op: "delete_lesion", lesion: sel.id });
    else if (k === "Delete" || k === "Backspace") send({ op: "delete_key", lesion: sel.id, frame: f });
    else if (low === "k") { const n = keyFrames(sel).find(g => g > f); if (n !== undefined) go(n); }
    else if (low === "j") { const n = keyFrames(sel).filter(g => g < f).pop(); if (n !== undefined) go(n); }
    else return false;
    return true;
  }
  function setTitle() {
    const clip = state.clip;
    if (!clip) return;
    title.textContent = `clip ${clip.clip_id} · ${clip.n} frames at ${clip.fps.toFixed(1)} fps · ` +
      (state.annotate ? "annotate mode: draw and correct the lesions, then save"
        : state.judged ? `marks judged by the hit rule "${clip.hit_rule}"`
          : "no annotations: marks are shown, not judged");
    if (state.annotate) {
      legend.replaceChildren(
        h("span", {}, h("i", { style: "border:3px solid #00E676" }), " key frame (drawn, confirmed or accepted)"),
        h("span", {}, h("i", { style: "border:2px dashed #00E676" }), " interpolated between key frames"),
        h("span", {}, h("i", { style: `border:2px dashed ${DRAFT}` }), " the detector's draft"),
        h("span", { class: "usbkit-note" }, "timeline: one lane per lesion, ◆ its key frames"));
    } else buildLegend();
  }
  function setAnnotate(on) {
    state.annotate = !!on;
    setTitle();
    annotateBox.checked = state.annotate;
    canvas.style.cursor = state.annotate ? "crosshair" : "";
    root.classList.toggle("usbkit-annotating", state.annotate);
    if (!state.annotate) { message.classList.remove("usbkit-error"); }
    buildAnnPanel();
    if (state.clip) { draw(); drawTimeline(); }
  }

  // ------------------------------------------------------------------ navigation
  let saveTimer = null;
  function go(f, sync = true) {
    if (!state.clip) return;
    state.frame = Math.max(0, Math.min(state.clip.n - 1, Math.round(f)));
    draw();
    if (sync) {
      clearTimeout(saveTimer);
      saveTimer = setTimeout(() => { model.set("frame", state.frame); model.save_changes(); }, 120);
    }
  }

  function say(text) {
    message.textContent = text;
  }

  // The things "previous" and "next" step through, in frame order: for kind "miss" the lesions
  // the model misses at its threshold (where each enters), for "fp" its false-positive tracks
  // at or above the threshold (one per linked track, as counted), for "mark" (clips without
  // annotations) the tracks of all its marks.
  function targets(m, kind) {
    const t = state.thresholds[m.name];
    if (kind === "miss") {
      return state.clip.lesions
        .map((l, i) => ({ frame: Math.min(...l.frames), lesion: i, rating: m.ratings[i] }))
        .filter(({ rating }) => rating === null || rating === undefined || rating < t)
        .sort((a, b) => a.frame - b.frame || a.lesion - b.lesion);
    }
    return m.tracks
      .map((tr, j) => ({ tr, j }))
      .filter(({ tr }) => tr.score >= t)
      .map(({ tr, j }) => ({
        frame: Math.min(...tr.frames.filter((_, k) => tr.scores[k] >= t)), track: j, score: tr.score,
      }))
      .sort((a, b) => a.frame - b.frame || a.track - b.track);
  }

  function jump(m, kind, dir = 1) {
    const t = state.thresholds[m.name];
    const f = state.frame;
    const items = targets(m, kind);
    const at = `≥ ${t.toFixed(2)}`;
    if (!items.length) {
      state.focus = null;
      draw();
      return say(kind === "miss" ? `${m.name} finds every lesion of this clip at ${at}: no miss.`
        : kind === "fp" ? `${m.name} has no false positive at ${at} in this clip.`
          : `${m.name} has no mark at ${at} in this clip.`);
    }
    // from the item the message is about when still on its frame, else from the frame shown
    const fo = state.focus;
    let k = -1;
    if (fo && fo.model === m.name && fo.kind === kind) {
      k = items.findIndex(it => (kind === "miss" ? it.lesion === fo.lesion : it.track === fo.track));
      if (k >= 0 && items[k].frame !== f) k = -1;
    }
    let to;
    if (k >= 0) to = k + dir;
    else if (dir > 0) to = items.findIndex(it => it.frame >= f);
    else to = items.map(it => it.frame <= f).lastIndexOf(true);
    const what = { miss: "missed lesion", fp: "false positive", mark: "mark" }[kind];
    const list = items.length === 1 ? `frame ${items[0].frame}`
      : `frames ${items.map(it => it.frame).join(", ")}`;
    if (to < 0 || to >= items.length) {
      return say(`No ${what} of ${m.name} ${dir > 0 ? "after" : "before"} frame ${f} ` +
        `(this clip has ${items.length}, at ${list}).`);
    }
    const it = items[to];
    const n = `${to + 1} of ${items.length}`;
    if (kind === "miss") {
      state.focus = { model: m.name, kind, lesion: it.lesion, tag: `missed by ${m.name}` };
      say(`${m.name} misses lesion ${state.clip.lesions[it.lesion].id} (outlined in yellow), in view from frame ${it.frame}: missed lesion ${n} in this clip.`);
    } else if (kind === "fp") {
      state.focus = { model: m.name, kind, track: it.track, tag: `false positive of ${m.name}` };
      say(`False positive ${n} of ${m.name} (outlined in yellow), from frame ${it.frame}, top score ${it.score.toFixed(2)} (one per linked track, as counted).`);
    } else {
      state.focus = { model: m.name, kind, track: it.track, tag: `mark of ${m.name}` };
      say(`Mark ${n} of ${m.name} (outlined in yellow), from frame ${it.frame}, top score ${it.score.toFixed(2)} (one per linked track; without annotations it is not judged).`);
    }
    go(it.frame);
  }

  function toggle() {
    if (state.playing) return stop();
    state.playing = true;
    play.textContent = "❚❚ pause";
    if (state.frame >= state.clip.n - 1) go(0);
    const start = performance.now(), from = state.frame, rate = Math.max(1, +fps.value || state.clip.fps);
    let last = from;
    const tick = now => {
      if (!state.playing) return;
      const target = Math.min(state.clip.n - 1, from + Math.floor((now - start) * rate / 1000));
      if (target !== last) {
        state.played.advanced += target - last;
        state.played.shown += 1;
        last = target;
        go(target, false);
      }
      if (target >= state.clip.n - 1) return stop();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  function stop() {
    state.playing = false;
    play.textContent = "▶ play";
    go(state.frame);
  }

  // ------------------------------------------------------------------ events
  const KEYS = { ArrowRight: 1, ArrowLeft: -1, PageDown: 10, PageUp: -10 };
  root.addEventListener("keydown", e => {
    if (e.target instanceof HTMLInputElement && e.target.type === "number") return;
    if (state.annotate && !(e.key in KEYS) && !e.altKey && (e.key !== " ")) {
      if (e.target instanceof HTMLSelectElement) return;
      const t0 = e.timeStamp;
      if (annotateKey(e)) {
        e.preventDefault();
        e.stopPropagation();
        requestAnimationFrame(() => { state.samples.push(performance.now() - t0); });
        return;
      }
    }
    let to = null;
    if (e.key in KEYS) to = state.frame + KEYS[e.key];
    else if (e.key === "Home") to = 0;
    else if (e.key === "End") to = state.clip.n - 1;
    else if (e.key === " ") { e.preventDefault(); e.stopPropagation(); toggle(); return; }
    if (to === null) return;
    e.preventDefault();
    e.stopPropagation();  // JupyterLab's own shortcuts must not take the keys
    const t0 = e.timeStamp;
    go(to);
    // the frame that shows the change is produced right after this callback
    requestAnimationFrame(() => {
      state.samples.push(performance.now() - t0);
      if (state.samples.length > 500) state.samples.shift();
    });
  });
  root.addEventListener("mousedown", () => root.focus({ preventScroll: true }));
  canvas.addEventListener("mousedown", onCanvasDown);
  window.addEventListener("mousemove", onDragMove);
  window.addEventListener("mouseup", onDragUp);
  annotateBox.addEventListener("change", () => {
    setAnnotate(annotateBox.checked);
    model.set("annotate", annotateBox.checked);
    model.save_changes();
  });
  // unsaved annotation edits are never dropped silently: the browser asks before leaving
  const beforeUnload = e => {
    if (state.annotate && state.ann && state.ann.dirty) { e.preventDefault(); e.returnValue = ""; return ""; }
  };
  window.addEventListener("beforeunload", beforeUnload);
  slider.addEventListener("input", () => go(+slider.value));
  play.addEventListener("click", toggle);
  marksBox.addEventListener("change", () => { state.showMarks = marksBox.checked; draw(); });
  fitBox.addEventListener("change", () => { state.fit = fitBox.checked; layout(); });
  let dragging = false;
  const fromTimeline = e => {
    const r = timeline.getBoundingClientRect();
    const x = (e.clientX - r.left) * (timeline.width / r.width);
    const pad = 40 * (state.tdpr || 1), W = timeline.width - pad - 10 * (state.tdpr || 1);
    go(((x - pad) / W) * (state.clip.n - 1));
  };
  timeline.addEventListener("mousedown", e => { dragging = true; fromTimeline(e); });
  window.addEventListener("mousemove", e => { if (dragging) fromTimeline(e); });
  window.addEventListener("mouseup", () => { dragging = false; });
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => layout()).observe(root);

  let pending = false;
  const reload = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; state.frame = model.get("frame") || 0; load(); });
  };
  model.on("change:clip", reload);
  model.on("change:frames", reload);
  model.on("change:frame", () => { const f = model.get("frame"); if (f !== state.frame) go(f, false); });
  if (canAnnotate) {
    model.on("change:ann", annLoad);
    model.on("change:annotate", () => setAnnotate(model.get("annotate")));
  }
  state.frame = model.get("frame") || 0;
  load();
  if (canAnnotate) { setAnnotate(model.get("annotate")); annLoad(); }
  return () => {
    state.playing = false;
    window.removeEventListener("beforeunload", beforeUnload);
    window.removeEventListener("mousemove", onDragMove);
    window.removeEventListener("mouseup", onDragUp);
  };
}

export default { render };
