// usbkit clip viewer: the one front end of the JupyterLab scrubber and the static pages.
//
// Everything a frame change needs runs here, in the page: the frames arrive once (JPEG bytes,
// decoded to bitmaps up front), the ground truth and each model's marks arrive as data, and
// drawing, thresholds, scrubbing, playback, the timeline and the keyboard never wait for a
// kernel. The host gives a `model` with get(name), set(name, value), on(event, callback) and
// save_changes() (anywidget's model in JupyterLab, a small stand-in in the static pages).
//
// Data (model.get("clip")): {clip_id, n, fps, width, height, hit_rule, frame_base,
//   lesions: [{id, frames: [f...], boxes: [[x0, y0, x1, y1]...]}],       (crop pixels)
//   models: [{name, color, threshold, threshold_note,
//             marks: {frame: [], box: [[...]], score: [], hit: [0|1], track: []},
//             ratings: [best score of a mark hitting each lesion, null if none],
//             tracks: [{score, frames: [...], scores: [...]}]}]}         (false-positive tracks)
// model.get("frames"): all JPEGs concatenated; model.get("offsets"): n + 1 byte offsets.

const GT = "#00C853";

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
          h("label", {}, fitBox, " fit to width")),
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
    state.frame = Math.min(state.frame, clip.n - 1);
    const saved = model.get("thresholds") || {};
    state.thresholds = {};
    clip.models.forEach(m => { state.thresholds[m.name] = saved[m.name] ?? m.threshold; m.top = topScores(m); });
    slider.max = String(clip.n - 1);
    fps.value = String(Math.round(clip.fps));
    title.textContent = `clip ${clip.clip_id} · ${clip.n} frames at ${clip.fps.toFixed(1)} fps · marks judged by the hit rule "${clip.hit_rule}"`;
    buildLegend();
    buildModels();
    const bytes = bytesOf(model.get("frames"));
    const offsets = model.get("offsets") || [];
    const token = {};
    state.loadToken = token;
    state.bitmaps = new Array(clip.n).fill(null);
    for (let i = 0; i < clip.n; i++) {
      const blob = new Blob([bytes.subarray(offsets[i], offsets[i + 1])], { type: "image/jpeg" });
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
      const next = (kind) => h("button", { type: "button", class: "usbkit-jump", onclick: () => jump(m, kind) },
        kind === "miss" ? "next miss" : "next false positive");
      modelsPanel.append(h("div", { class: "usbkit-model", style: `border-left:5px solid ${m.color}` },
        h("div", {}, h("span", { style: `color:${m.color};font-weight:bold` }, m.name), " shows marks ≥ ", value),
        s,
        m.threshold_note ? h("div", { class: "usbkit-note" }, m.threshold_note) : "",
        h("div", {}, next("miss"), " ", next("fp"))));
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
    if (state.showMarks) {
      ctx.font = `${Math.round(11 * dpr)}px Arial, sans-serif`;
      clip.models.forEach(m => {
        const t = state.thresholds[m.name];
        ctx.strokeStyle = m.color;
        ctx.lineWidth = 2 * dpr;
        m.marks.frame.forEach((mf, k) => {
          if (mf !== f || m.marks.score[k] < t) return;
          const [x, y, w, hgt] = boxPath(m.marks.box[k], s);
          ctx.setLineDash(m.marks.hit[k] ? [] : [6 * dpr, 4 * dpr]);
          ctx.strokeRect(x, y, w, hgt);
          ctx.setLineDash([]);
          const text = m.marks.score[k].toFixed(2);
          ctx.fillStyle = "rgba(0,0,0,0.6)";
          ctx.fillRect(x, y - 13 * dpr, ctx.measureText(text).width + 4 * dpr, 13 * dpr);
          ctx.fillStyle = m.color === "#0072B2" ? "#8fd3ff" : m.color;
          ctx.fillText(text, x + 2 * dpr, y - 3 * dpr);
        });
      });
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
    const inView = lesionsOn(f).length;
    label.textContent = `frame ${f} of 0–${clip.n - 1} · ${(f / clip.fps).toFixed(2)} s · ${inView ? `${inView} lesion${inView > 1 ? "s" : ""} in view` : "no lesion in view"}`;
    if (+slider.value !== f) slider.value = String(f);
    root.dataset.frame = String(f);
    drawCursor();
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
    clip.lesions.forEach(l => {
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

  function jump(m, kind) {
    const t = state.thresholds[m.name];
    const f = state.frame;
    if (kind === "miss") {
      const missed = state.clip.lesions
        .map((l, i) => ({ l, rating: m.ratings[i] }))
        .filter(({ rating }) => rating === null || rating < t)
        .map(({ l }) => Math.min(...l.frames))
        .sort((a, b) => a - b);
      const next = missed.find(first => first > f);
      if (!missed.length) return say(`${m.name} finds every lesion of this clip at ≥ ${t.toFixed(2)}: no miss.`);
      if (next === undefined) return say(`No missed lesion after frame ${f} for ${m.name} (this clip has ${missed.length}, the first entering at frame ${missed[0]}).`);
      say(`${m.name} misses the lesion entering at frame ${next} (${missed.length} missed in this clip).`);
      return go(next);
    }
    const starts = m.tracks
      .filter(tr => tr.score >= t)
      .map(tr => Math.min(...tr.frames.filter((_, k) => tr.scores[k] >= t)))
      .sort((a, b) => a - b);
    const next = starts.find(first => first > f);
    if (!starts.length) return say(`${m.name} has no false positive at ≥ ${t.toFixed(2)} in this clip.`);
    if (next === undefined) return say(`No false positive after frame ${f} for ${m.name} (this clip has ${starts.length}, the first at frame ${starts[0]}).`);
    say(`False positive of ${m.name} from frame ${next} (${starts.length} in this clip; one per linked track).`);
    go(next);
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
  state.frame = model.get("frame") || 0;
  load();
  return () => { state.playing = false; };
}

export default { render };
