"""``usbkit synth``: write the synthetic cohort as a complete study folder."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from usbkit.errors import UsbkitError
from usbkit.io.encode import write_video
from usbkit.io.split import split_patients
from usbkit.io.study import write_study_tables
from usbkit.safeio import output_dir
from usbkit.synth.config import SynthConfig, preset_config
from usbkit.synth.scene import SweepRenderer, plan_sweep
from usbkit.synth.screen import make_screen


def plan_cohort(cfg: SynthConfig) -> list[dict]:
    """Patients and their clips (pathology, lesion count, per-clip seeds), from the seed.

    Each patient draws from its own child of the seed, so patient ``k`` is the same whatever
    the number of patients.
    """
    lc = cfg.lesions
    root = np.random.SeedSequence(cfg.seed)
    clips = []
    for k, child in enumerate(root.spawn(cfg.patients)):
        rng = np.random.default_rng(child)
        u = rng.random()
        pathology = (
            "normal"
            if u < lc.normal_fraction
            else ("malignant" if u < lc.normal_fraction + lc.malignant_fraction else "benign")
        )
        n_clips = int(rng.integers(cfg.clips_per_patient[0], cfg.clips_per_patient[1] + 1))
        pid = f"P{k + 1:04d}"
        for c in range(n_clips):
            n_les = 0
            if pathology != "normal" and (c == 0 or rng.random() >= lc.lesion_free_clip_fraction):
                n_les = int(rng.integers(lc.per_scan[0], lc.per_scan[1] + 1))
            clips.append(
                {
                    "clip_id": f"{pid}_C{c + 1}",
                    "patient_id": pid,
                    "pathology": pathology if n_les else "normal",
                    "patient_pathology": pathology,
                    "n_lesions": n_les,
                    "seed": int(rng.integers(0, 2**63 - 1)),
                }
            )
    return clips


def render_clip(spec: dict, cfg: SynthConfig, out_dir: str) -> dict:
    """Render one clip to an MP4 and return its manifest row, boxes and events."""
    rng = np.random.default_rng(spec["seed"])
    plan = plan_sweep(rng, cfg, spec["patient_pathology"], spec["n_lesions"])
    renderer = SweepRenderer(plan, cfg)
    im = cfg.imaging
    if im.ui_border:
        screen, ox, oy = make_screen(rng, im)
    else:
        screen, ox, oy = None, 0, 0
    frames, boxes, events = [], [], []
    for t in range(plan.n_frames):
        img, truth = renderer.frame(t)
        if screen is not None:
            full = screen.copy()
            full[oy : oy + im.height, ox : ox + im.width] = img
            img = full
        frames.append(img)
        for lid, (c0, r0, c1, r1) in truth["lesions"].items():
            boxes.append(
                {
                    "clip_id": spec["clip_id"],
                    "frame": t,
                    "lesion_id": lid,
                    "x0": c0 + ox,
                    "y0": r0 + oy,
                    "x1": c1 + ox,
                    "y1": r1 + oy,
                    "label": [b.kind for b in plan.lesions if b.lesion_id == lid][0],
                }
            )
        for kind, k, (c0, r0, c1, r1) in truth["events"]:
            events.append(
                {
                    "clip_id": spec["clip_id"],
                    "frame": t,
                    "kind": kind,
                    "event": k,
                    "x0": c0 + ox,
                    "y0": r0 + oy,
                    "x1": c1 + ox,
                    "y1": r1 + oy,
                }
            )
    rel = f"clips/{spec['patient_id']}/{spec['clip_id']}.mp4"
    dest = Path(out_dir) / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_video(np.stack(frames), dest, fps=plan.fps, crf=cfg.crf)
    row = {
        "clip_id": spec["clip_id"],
        "patient_id": spec["patient_id"],
        "path": rel,
        "pathology": spec["pathology"],
        "fps": plan.fps,
    }
    return {
        "row": row,
        "boxes": boxes,
        "events": events,
        "n_mimics": len(plan.mimics),
        "n_artifacts": len(plan.artifacts),
        "n_frames": plan.n_frames,
    }


def _worker_count(n_clips: int) -> int:
    env = os.environ.get("USBKIT_WORKERS")
    n = int(env) if env else (os.cpu_count() or 1)
    return max(1, min(n, n_clips))


def synthesize(
    out: str | Path,
    preset: str = "quick",
    patients: int | None = None,
    seed: int = 0,
    config: SynthConfig | None = None,
    progress: bool = True,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic cine cohort as a study folder.

    Parameters
    ----------
    out : str or Path
        New study folder (must not exist or be empty).
    preset : {'quick', 'paper'}
        Cohort size and clip lengths.
    patients : int, optional
        Number of patients instead of the preset's.
    seed : int
        Random seed; the same seed gives identical annotations and frames.
    config : SynthConfig, optional
        Full config (overrides ``preset``, ``patients`` and ``seed``).
    progress : bool
        Show a progress bar.
    workers : int, optional
        Processes used for rendering (default: all cores).
    overwrite : bool
        Replace an earlier synthetic cohort in ``out`` (kept until the new one is complete).

    Returns
    -------
    Path
        The study folder, holding ``manifest.csv``, ``annotations.csv``, ``clips/``,
        ``synth_config.json`` and ``synth_events.csv`` (where mimics and artifacts are).
    """
    cfg = config or preset_config(preset, patients, seed)
    if cfg.patients < 1:
        raise UsbkitError("the number of patients must be at least 1")
    out = Path(out)
    with output_dir(out, "synth", overwrite=overwrite) as tmp:
        specs = plan_cohort(cfg)
        n_workers = workers or _worker_count(len(specs))
        results = []
        bar = tqdm(total=len(specs), desc="synthesizing clips", unit="clip", disable=not progress)
        if n_workers == 1:
            for spec in specs:
                results.append(render_clip(spec, cfg, str(tmp)))
                bar.update()
        else:
            with ProcessPoolExecutor(n_workers) as pool:
                for res in pool.map(
                    render_clip, specs, [cfg] * len(specs), [str(tmp)] * len(specs)
                ):
                    results.append(res)
                    bar.update()
        bar.close()
        manifest = pd.DataFrame([r["row"] for r in results])
        manifest = split_patients(manifest, cfg.split_fractions, seed=cfg.seed)
        boxes = pd.DataFrame(
            [b for r in results for b in r["boxes"]],
            columns=["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1", "label"],
        )
        write_study_tables(tmp, manifest, boxes)
        events = pd.DataFrame(
            [e for r in results for e in r["events"]],
            columns=["clip_id", "frame", "kind", "event", "x0", "y0", "x1", "y1"],
        )
        events.to_csv(tmp / "synth_events.csv", index=False)
        (tmp / "synth_config.json").write_text(cfg.to_json())
    return out


__all__ = ["synthesize", "plan_cohort", "render_clip", "SynthConfig", "preset_config"]


def anatomy_example(
    cfg: SynthConfig | None = None, pathology: str = "malignant"
) -> tuple[np.ndarray, np.ndarray, float]:
    """A synthetic B-mode frame and what each of its pixels is, for a labelled sketch.

    The first clip of the cohort ``cfg`` (default: the quick preset) whose patient has a
    ``pathology`` mass, at the frame where it shows best: within 3 frames of where the plane
    cuts the mass through its centre, the one where the mass is most visible.

    Parameters
    ----------
    cfg : SynthConfig, optional
        The cohort's settings.
    pathology : {'malignant', 'benign'}
        Which kind of mass to show.

    Returns
    -------
    frame : ndarray of uint8, (height, width)
        The B-mode image (no screen around it).
    tissues : ndarray of uint8, (height, width)
        Index into :data:`usbkit.synth.scene.TISSUES` per pixel.
    pixel_mm : float
        Pixel size (mm).

    Examples
    --------
    >>> from usbkit.synth.scene import TISSUES
    >>> frame, tissues, mm = anatomy_example()
    >>> frame.shape == tissues.shape == (320, 384), TISSUES[tissues[0, 0]]
    (True, 'skin')
    """
    cfg = cfg or preset_config("quick")
    spec = next(s for s in plan_cohort(cfg) if s["pathology"] == pathology and s["n_lesions"] > 0)
    rng = np.random.default_rng(spec["seed"])
    plan = plan_sweep(rng, cfg, spec["patient_pathology"], spec["n_lesions"])
    body = plan.lesions[0]
    centre = plan.centre_frame(body)
    near = np.arange(max(centre - 3, 0), min(centre + 4, plan.n_frames))
    t = int(near[np.argmax(body.visibility[near])])
    renderer = SweepRenderer(plan, cfg)
    for k in range(t + 1):  # frame by frame: the speckle evolves as in the clip
        frame, _ = renderer.frame(k)
    return frame, renderer.tissue_map(t), cfg.imaging.pixel_mm
