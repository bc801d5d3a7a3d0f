"""Synthetic still images laid out like a public breast-ultrasound image set (BUSI).

Real still-image sets differ from the cine cohort in ways a detector must survive: every image
has its own size (400-1000 pixels across), field of view and overall gain, masses range from
3 to 40 mm, and the scanner's screen border surrounds the picture. ``synthesize_stills``
renders such images with the cohort's own B-mode generator and writes them the way BUSI
does (``benign/``, ``malignant/``, ``normal/`` folders of ``name (N).png`` with a
``name (N)_mask.png`` beside each), so ``usbkit import busi`` reads them exactly as it reads
the real set; docs/importers.md gives the commands from there to the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from usbkit.safeio import output_dir
from usbkit.synth.config import SynthConfig
from usbkit.synth.scene import TISSUES, SweepRenderer, plan_sweep
from usbkit.synth.screen import make_screen


@dataclass(frozen=True)
class StillsConfig:
    """A set of synthetic still images.

    Attributes
    ----------
    seed : int
        One seed gives the same images.
    images : int
        Number of images.
    width_px : tuple of int
        Range of the B-mode image width (pixels).
    aspect : tuple of float
        Range of the image's height / width.
    field_mm : tuple of float
        Range of the lateral field of view (mm); the pixel size follows from it.
    gain_db : tuple of float
        Range of the overall gain change (dB) from the generator's default.
    lesion_size_mm : tuple of float
        Range of the mass diameter (mm, log-uniform), capped at 80% of the image depth.
    border_px : tuple of int
        Range of the scanner-screen margin (pixels) around the image, each side.
    malignant_fraction, normal_fraction : float
        Share of images with a malignant mass, and of images with none (the rest benign),
        about as in BUSI (210 and 133 of 780).
    base : SynthConfig
        The generator's settings (anatomy, lesion look, mimics and artifacts).
    """

    seed: int = 0
    images: int = 300
    width_px: tuple[int, int] = (400, 1000)
    aspect: tuple[float, float] = (0.7, 0.9)
    field_mm: tuple[float, float] = (30.0, 50.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    lesion_size_mm: tuple[float, float] = (3.0, 40.0)
    border_px: tuple[int, int] = (20, 80)
    malignant_fraction: float = 0.27
    normal_fraction: float = 0.17
    base: SynthConfig = field(default_factory=SynthConfig)


def render_still(k: int, cfg: StillsConfig) -> tuple[str, np.ndarray, np.ndarray]:
    """Image ``k``: its class, the screen image (uint8) and its lesion mask (uint8 0/255)."""
    rng = np.random.default_rng([cfg.seed, k])
    u = rng.random()
    kind = (
        "normal"
        if u < cfg.normal_fraction
        else ("malignant" if u < cfg.normal_fraction + cfg.malignant_fraction else "benign")
    )
    base = cfg.base
    width = int(rng.integers(cfg.width_px[0], cfg.width_px[1] + 1))
    height = int(round(width * rng.uniform(*cfg.aspect)))
    mm = float(rng.uniform(*cfg.field_mm)) / width
    scale = base.imaging.pixel_mm / mm  # the generator's pixel-sized settings, in these pixels
    border = int(rng.integers(cfg.border_px[0], cfg.border_px[1] + 1))
    imaging = replace(
        base.imaging,
        width=width,
        height=height,
        pixel_mm=mm,
        psf_axial_px=base.imaging.psf_axial_px * scale,
        psf_lateral_px=base.imaging.psf_lateral_px * scale,
        speckle_reduction_px=base.imaging.speckle_reduction_px * scale,
        reference_amplitude=base.imaging.reference_amplitude
        * 10 ** (-float(rng.uniform(*cfg.gain_db)) / 20),
        screen_width=width + 2 * border,
        screen_height=height + border + max(border, base.imaging.screen.image_top_min_px),
    )
    depth_mm = height * mm
    size = (cfg.lesion_size_mm[0], min(cfg.lesion_size_mm[1], 0.8 * depth_mm))
    lesions = replace(base.lesions, size_mm=size, visibility_range=(0.85, 1.0), dip_rate=0.0)
    synth = replace(base, imaging=imaging, lesions=lesions)
    plan = plan_sweep(rng, synth, kind, 0 if kind == "normal" else 1)
    if plan.lesions:
        t = plan.centre_frame(plan.lesions[0])
    else:
        t = int(rng.integers(0, plan.n_frames))
    renderer = SweepRenderer(plan, synth)
    frame, _ = renderer.frame(t)
    mass = renderer.tissue_map(t) == TISSUES.index("mass")
    screen, ox, oy = make_screen(rng, imaging)
    screen[oy : oy + height, ox : ox + width] = frame
    mask = np.zeros(screen.shape, np.uint8)
    mask[oy : oy + height, ox : ox + width][mass] = 255
    return kind, screen, mask


def synthesize_stills(
    out: str | Path,
    config: StillsConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write synthetic still images in the BUSI layout.

    Parameters
    ----------
    out : str or Path
        New folder; it receives ``benign/``, ``malignant/`` and ``normal/``.
    config : StillsConfig, optional
        Number, sizes, gains and lesions of the images (default: 300 images).
    progress : bool
        Show a progress bar.
    overwrite : bool
        Replace an earlier set written by this function in ``out``.

    Returns
    -------
    Path
        ``out``, ready for ``usbkit import busi OUT STUDY``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "stills"
    >>> _ = synthesize_stills(d, StillsConfig(images=3, width_px=(400, 420)), progress=False)
    >>> sorted(p.name for p in d.glob("*/*.png"))[:2]
    ['benign (1).png', 'benign (1)_mask.png']
    """
    cfg = config or StillsConfig()
    out = Path(out)
    with output_dir(out, "synth-stills", overwrite=overwrite) as tmp:
        counts: dict[str, int] = {}
        for k in tqdm(range(cfg.images), desc="synthesizing stills", disable=not progress):
            kind, image, mask = render_still(k, cfg)
            counts[kind] = counts.get(kind, 0) + 1
            folder = Path(tmp) / kind
            folder.mkdir(exist_ok=True)
            name = f"{kind} ({counts[kind]})"
            Image.fromarray(image).save(folder / f"{name}.png")
            Image.fromarray(mask).save(folder / f"{name}_mask.png")
    return out
