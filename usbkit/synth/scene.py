"""One freehand sweep: breast anatomy, lesions, mimics and artifacts, rendered frame by frame.

Geometry: x is lateral (image columns), z is depth (rows), y is elevation, the direction the
probe sweeps. Lesions and fat lobules are 3-D bodies; each frame shows the section of the
tissue at the plane y_t = y_0 + speed * t, so lesions enter the plane, grow, shrink and leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usbkit.synth.bmode import (
    complex_scatterers,
    depth_gain,
    envelope,
    gaussian_transfer,
    log_compress,
    psf_transfer,
    reduce_speckle,
)
from usbkit.synth.config import SynthConfig

#: The tissues of :meth:`SweepRenderer.tissue_map`, in index order.
TISSUES = (
    "skin",
    "subcutaneous fat",
    "Cooper's ligament",
    "fibroglandular tissue",
    "retromammary fat",
    "pectoral muscle",
    "mass",
    "posterior shadow",
    "posterior enhancement",
)


@dataclass
class Body:
    """An ellipsoidal (possibly irregular) body: a lesion or a mass-like fat lobule."""

    kind: str  # "benign" | "malignant" | "mimic"
    x: float  # centre, mm
    z: float
    y: float
    a: float  # lateral semi-axis, mm
    b: float  # axial semi-axis, mm
    ry: float  # elevational semi-axis, mm
    angle: float  # rad
    contrast: float  # energy ratio inside vs background at full visibility
    harmonics: np.ndarray  # (k, 3): order, amplitude, phase
    spicules: np.ndarray  # (m, 3): angle, amplitude, width
    edge_mm: float
    posterior: float  # >1 enhancement, <1 shadow, 1 none
    visibility: np.ndarray  # per frame, 0..1
    lesion_id: str = ""


@dataclass
class Artifact:
    """A transient artifact: loss-of-contact shadow or reverberation, frames ``start`` to
    ``stop`` (exclusive), lateral extent ``x0``-``x1`` and depth in mm."""

    kind: str  # "contact_loss" | "reverberation"
    start: int
    stop: int
    x0: float  # mm
    x1: float
    depth: float  # mm


@dataclass
class SweepPlan:
    """Everything random about one clip, drawn up front so rendering is deterministic."""

    n_frames: int
    fps: int
    speed: float
    y0: float
    jitter_mm: np.ndarray
    boundaries: dict
    seeds: np.ndarray  # fat lobule Voronoi seeds (n, 3): x, y, z
    gland_waves: np.ndarray  # (k, 6): kx, kz, ky, phase, amp, unused (k in rad/mm)
    muscle: tuple[float, float]  # angle, period mm
    lesions: list[Body] = field(default_factory=list)
    mimics: list[Body] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    scatter_seed: int = 0

    def centre_frame(self, body: Body) -> int:
        """The frame whose plane cuts ``body`` through its centre (clamped to the clip)."""
        return int(np.clip(round((body.y - self.y0) / self.speed), 0, self.n_frames - 1))


def _visibility(rng, n: int, cfg: SynthConfig) -> np.ndarray:
    lc = cfg.lesions
    noise = np.zeros(n)
    e = rng.standard_normal(n)
    for t in range(n):
        noise[t] = (lc.visibility_ar * noise[t - 1] if t else 0.0) + lc.visibility_innovation * e[t]
    v = np.clip(lc.visibility_baseline + lc.visibility_jitter * noise, *lc.visibility_range)
    t = 0
    while t < n:
        if rng.random() < lc.dip_rate:
            d = int(rng.integers(lc.dip_frames[0], lc.dip_frames[1] + 1))
            v[t : t + d] = lc.dip_visibility
            t += d
        t += 1
    return v


def _shape(rng, irregular: bool, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray, float]:
    sc = cfg.shape
    orders = np.arange(sc.harmonic_orders[0], sc.harmonic_orders[1] + 1)
    amp = (
        rng.uniform(*sc.irregular_harmonic_amplitude, len(orders))
        if irregular
        else rng.uniform(*sc.smooth_harmonic_amplitude, len(orders))
    )
    # 1/n fall-off normalised at the second order
    harmonics = np.stack([orders, amp / orders * 2, rng.uniform(0, 2 * np.pi, len(orders))], 1)
    if irregular:
        m = int(rng.integers(sc.spicules[0], sc.spicules[1] + 1))
        spicules = np.stack(
            [
                rng.uniform(0, 2 * np.pi, m),
                rng.uniform(*sc.spicule_amplitude, m),
                rng.uniform(*sc.spicule_width_rad, m),
            ],
            1,
        )
        edge = rng.uniform(*sc.irregular_edge_mm)
    else:
        spicules = np.zeros((0, 3))  # columns: angle, amplitude, width
        edge = rng.uniform(*sc.smooth_edge_mm)
    return harmonics, spicules, edge


def plan_sweep(
    rng: np.random.Generator, cfg: SynthConfig, pathology: str, n_lesions: int
) -> SweepPlan:
    """Draw a random sweep with ``n_lesions`` lesions of ``pathology``."""
    im, sw, lc, mc, an = cfg.imaging, cfg.sweep, cfg.lesions, cfg.mimics, cfg.anatomy
    width_mm, depth_mm = im.width * im.pixel_mm, im.height * im.pixel_mm
    n = int(rng.integers(sw.frames[0], sw.frames[1] + 1))
    fps = int(rng.choice(sw.fps_choices))
    speed = float(rng.uniform(*sw.speed_mm_per_frame))
    length = speed * n
    y0 = float(rng.uniform(*sw.start_y_mm))
    jit = np.zeros(n)
    for t in range(1, n):
        # innovation sd is half of jitter_px (the scale the config has always used)
        jit[t] = sw.jitter_ar * jit[t - 1] + rng.normal(0, sw.jitter_px * im.pixel_mm * 0.5)
    skin = rng.uniform(*an.skin_thickness_mm)
    fat = rng.uniform(*an.fat_depth_mm)
    gland = fat + rng.uniform(*an.gland_thickness_mm)
    retro = gland + rng.uniform(*an.retromammary_thickness_mm)

    def waves(k=an.boundary_waves):
        return np.stack(
            [
                rng.uniform(*an.boundary_wave_amplitude_mm, k),
                2 * np.pi / rng.uniform(*an.boundary_wave_lateral_period_mm, k),
                2 * np.pi / rng.uniform(*an.boundary_wave_elevational_period_mm, k),
                rng.uniform(0, 2 * np.pi, k),
            ],
            1,
        )

    boundaries = {
        "skin": skin,
        "fat": (fat, waves()),
        "gland": (gland, waves()),
        "retro": (retro, waves()),
    }
    ys = (
        y0 - an.lobule_seed_elevational_margin_mm,
        y0 + length + an.lobule_seed_elevational_margin_mm,
    )
    n_seeds = int(
        width_mm * (ys[1] - ys[0]) * (fat + an.lobule_count_depth_margin_mm) / an.lobule_volume_mm3
    )
    seeds = np.stack(
        [
            rng.uniform(
                -an.lobule_seed_lateral_margin_mm,
                width_mm + an.lobule_seed_lateral_margin_mm,
                n_seeds,
            ),
            rng.uniform(*ys, n_seeds),
            rng.uniform(skin, fat + an.lobule_seed_depth_margin_mm, n_seeds),
        ],
        1,
    )
    n_tex = an.gland_texture_waves
    gwaves = np.stack(
        [
            rng.normal(0, 2 * np.pi / an.gland_texture_lateral_period_mm, n_tex),
            rng.normal(0, 2 * np.pi / an.gland_texture_axial_period_mm, n_tex),
            rng.normal(0, 2 * np.pi / an.gland_texture_elevational_period_mm, n_tex),
            rng.uniform(0, 2 * np.pi, n_tex),
            rng.uniform(*an.gland_texture_amplitude, n_tex),
            np.zeros(n_tex),
        ],
        1,
    )
    plan = SweepPlan(
        n_frames=n,
        fps=fps,
        speed=speed,
        y0=y0,
        jitter_mm=jit,
        boundaries=boundaries,
        seeds=seeds,
        gland_waves=gwaves,
        muscle=(
            float(rng.uniform(*an.muscle_striation_angle_rad)),
            float(rng.uniform(*an.muscle_striation_period_mm)),
        ),
        scatter_seed=int(rng.integers(0, np.iinfo(np.int32).max)),
    )
    for k in range(n_lesions):
        malignant = pathology == "malignant"
        diam = float(np.exp(rng.uniform(np.log(lc.size_mm[0]), np.log(lc.size_mm[1]))))
        a = diam / 2
        ratio = (
            rng.uniform(*lc.malignant_aspect_ratio)
            if malignant
            else rng.uniform(*lc.benign_aspect_ratio)
        )
        b = a * ratio
        if b > a:
            a, b = a / ratio, a
        b = min(b, depth_mm / 2 - lc.depth_margin_mm)
        ry = max(a, b) * rng.uniform(*lc.elevational_ratio)
        harmonics, spicules, edge = _shape(rng, malignant, cfg)
        lo, hi = fat + lc.fat_clearance_mm + b / 2, gland - b / 2
        zc = float(
            np.clip(
                rng.uniform(lo, hi) if hi > lo else (fat + gland) / 2,
                b + lc.depth_margin_mm,
                depth_mm - b - lc.depth_margin_mm,
            )
        )
        x_lo, x_hi = lc.lateral_range
        xc = float(rng.uniform(max(a, x_lo * width_mm), min(width_mm - a, x_hi * width_mm)))
        if malignant:
            post = (
                float(rng.uniform(*lc.shadow_factor))
                if rng.random() < lc.shadow_probability
                else 1.0
            )
        else:
            post = (
                float(rng.uniform(*lc.enhancement_factor))
                if rng.random() < lc.enhancement_probability
                else 1.0
            )
        plan.lesions.append(
            Body(
                kind="malignant" if malignant else "benign",
                x=xc,
                z=zc,
                y=float(y0 + length * rng.uniform(*lc.sweep_position)),
                a=a,
                b=b,
                ry=ry,
                angle=float(
                    rng.uniform(*lc.malignant_angle_rad)
                    if malignant
                    else rng.uniform(*lc.benign_angle_rad)
                ),
                contrast=float(rng.uniform(*lc.contrast)),
                harmonics=harmonics,
                spicules=spicules,
                edge_mm=edge,
                posterior=post,
                visibility=_visibility(rng, n, cfg),
                lesion_id=str(k + 1),
            )
        )
    for _ in range(int(rng.poisson(mc.lobule_mimics_per_clip))):
        diam = float(rng.uniform(*mc.lobule_size_mm))
        a = diam / 2
        b = a * rng.uniform(*mc.lobule_aspect_ratio)
        d = int(rng.integers(mc.lobule_frames[0], mc.lobule_frames[1] + 1))
        t0 = int(rng.integers(0, max(1, n - d)))
        vis = np.zeros(n)
        tt = np.arange(t0, min(n, t0 + d))
        vis[tt] = np.sin(np.pi * (tt - t0 + 0.5) / d) ** mc.lobule_profile_exponent
        harmonics, spicules, edge = _shape(rng, False, cfg)
        top, bottom = mc.lobule_depth_margin_mm
        plan.mimics.append(
            Body(
                kind="mimic",
                x=float(rng.uniform(*mc.lobule_lateral_range) * width_mm),
                z=float(
                    np.clip(
                        rng.uniform(fat + mc.lobule_depth_mm[0], fat + mc.lobule_depth_mm[1]),
                        b + top,
                        depth_mm - b - bottom,
                    )
                ),
                y=0.0,
                a=a,
                b=b,
                ry=np.inf,
                angle=float(rng.uniform(*mc.lobule_angle_rad)),
                contrast=float(rng.uniform(*mc.lobule_contrast)),
                harmonics=harmonics,
                spicules=spicules,
                edge_mm=edge,
                posterior=1.0,
                visibility=vis,
            )
        )
    for _ in range(int(rng.poisson(mc.artifacts_per_100_frames * n / 100))):
        d = int(rng.integers(mc.artifact_frames[0], mc.artifact_frames[1] + 1))
        t0 = int(rng.integers(0, max(1, n - d)))
        kind = "contact_loss" if rng.random() < mc.contact_loss_fraction else "reverberation"
        xm = rng.uniform(*mc.artifact_lateral_range) * width_mm
        hw = (
            rng.uniform(*mc.contact_loss_half_width_mm)
            if kind == "contact_loss"
            else rng.uniform(*mc.reverberation_half_width_mm)
        )
        plan.artifacts.append(
            Artifact(
                kind,
                t0,
                min(n, t0 + d),
                float(max(0, xm - hw)),
                float(min(width_mm, xm + hw)),
                float(rng.uniform(*mc.artifact_depth_mm)),
            )
        )
    return plan


def _boundary(spec, x: np.ndarray, y: float) -> np.ndarray:
    base, w = spec
    return base + (w[:, 0:1] * np.sin(w[:, 1:2] * x[None] + w[:, 2:3] * y + w[:, 3:4])).sum(0)


def body_mask(body: Body, X: np.ndarray, Z: np.ndarray, y: float, core: bool = False):
    """Section of a body at plane ``y``.

    Returns the soft membership in [0, 1], the hard mask (inside the boundary) and the
    section's scale (1 at the body's centre plane), or ``(None, None, 0)`` when the plane
    misses the body. Only a window around the body is computed. With ``core``, the hard mask
    is the body's outline without its spicules (the mass an annotator boxes: thin spicules,
    blurred by the point-spread function, are not).
    """
    dy = 0.0 if not np.isfinite(body.ry) else (y - body.y) / body.ry
    if abs(dy) >= 1:
        return None, None, 0.0
    s = float(np.sqrt(1 - dy * dy))
    scale = max(body.a, body.b) * s
    # Window: the largest radial extent plus 4 edge widths, where the soft edge below has
    # fallen to exp(-4 / 0.35) ~ 1e-5 (a computation bound, not a tissue parameter).
    reach = (
        scale * (1.2 + body.harmonics[:, 1].sum() + body.spicules[:, 1].sum()) + 4 * body.edge_mm
    )
    xs, zs = X[0], Z[:, 0]
    c0, c1 = np.searchsorted(xs, [body.x - reach, body.x + reach])
    r0, r1 = np.searchsorted(zs, [body.z - reach, body.z + reach])
    soft = np.zeros(X.shape, dtype=np.float32)
    hard = np.zeros(X.shape, dtype=bool)
    if c1 <= c0 or r1 <= r0:
        return soft, hard, s
    Xw, Zw = X[r0:r1, c0:c1], Z[r0:r1, c0:c1]
    ca, sa = np.cos(body.angle), np.sin(body.angle)
    u = (Xw - body.x) * ca + (Zw - body.z) * sa
    v = -(Xw - body.x) * sa + (Zw - body.z) * ca
    r = np.sqrt((u / (body.a * s)) ** 2 + (v / (body.b * s)) ** 2)
    theta = np.arctan2(v, u)
    rho = np.ones_like(r)
    for order, amp, ph in body.harmonics:
        rho += amp * np.cos(order * theta + ph)
    body_rho = rho.copy()
    for ang, amp, width in body.spicules:
        dth = (theta - ang + np.pi) % (2 * np.pi) - np.pi
        rho += amp * np.exp(-0.5 * (dth / width) ** 2)
    dist = (r - rho) * scale  # ~ mm outside the boundary
    hard[r0:r1, c0:c1] = (r <= body_rho) if core else (dist <= 0)
    # Logistic edge with scale 0.35 x edge width: the 10-90 % rise spans ~1.5 edge widths
    # (how wide the edge is, is the config's edge range).
    soft[r0:r1, c0:c1] = 1.0 / (
        1.0 + np.exp(np.clip(dist / max(body.edge_mm * 0.35, 1e-3), -50, 50))
    )
    return soft, hard, s


class SweepRenderer:
    """Renders the frames and ground truth of a :class:`SweepPlan`."""

    def __init__(self, plan: SweepPlan, cfg: SynthConfig):
        self.plan, self.cfg = plan, cfg
        im = cfg.imaging
        self.x = (np.arange(im.width) + 0.5) * im.pixel_mm
        self.z = (np.arange(im.height) + 0.5) * im.pixel_mm
        self.transfer = psf_transfer((im.height, im.width), im.psf_axial_px, im.psf_lateral_px)
        self.gain = depth_gain(im)
        self.smoothing = (
            gaussian_transfer((im.height, im.width), im.speckle_reduction_px)
            if im.speckle_reduction_px > 0
            else None
        )
        self.rng = np.random.default_rng(plan.scatter_seed)
        self.scat = complex_scatterers(self.rng, (im.height, im.width))

    def _layers(self, t: int) -> dict:
        """The geometry of frame ``t``: the plane's position ``y`` (mm), the pixel grid
        ``X, Z`` (mm), the layer boundaries (depth in mm per column) and the septa (Cooper's
        ligaments) among the top ``rows`` rows, where the subcutaneous fat is."""
        p, an = self.plan, self.cfg.anatomy
        y = p.y0 + p.speed * t
        xs = self.x + p.jitter_mm[t]
        X, Z = np.meshgrid(xs.astype(np.float32), self.z.astype(np.float32))
        b = p.boundaries
        z_fat = _boundary(b["fat"], xs, y)[None]
        near = p.seeds[np.abs(p.seeds[:, 1] - y) < an.lobule_neighbour_radius_mm]
        rows = int(np.searchsorted(self.z, z_fat.max())) + 1  # only rows that hold fat
        septa = np.zeros((rows, X.shape[1]), dtype=bool)
        if len(near) >= 2:
            from scipy.spatial import cKDTree

            # distances (mm) from each fat-zone pixel to its two nearest lobule seeds
            pts = np.stack(
                [X[:rows].ravel(), Z[:rows].ravel(), np.full(X[:rows].size, y)], 1
            ).astype(np.float64)
            two, _ = cKDTree(near[:, [0, 2, 1]]).query(pts, k=2)
            septa = ((two[:, 1] - two[:, 0]) < an.septum_width_mm).reshape(rows, X.shape[1])
        return {
            "y": y,
            "xs": xs,
            "X": X,
            "Z": Z,
            "skin": b["skin"],
            "fat": z_fat,
            "gland": _boundary(b["gland"], xs, y)[None],
            "retro": _boundary(b["retro"], xs, y)[None],
            "rows": rows,
            "septa": septa,
        }

    def tissue_map(self, t: int) -> np.ndarray:
        """What each pixel of frame ``t`` is: an index into :data:`TISSUES` (uint8), for the
        labelled anatomy sketch beside a synthetic frame. Masses are drawn over the layers
        (where their section's hard outline is), their posterior shadow or enhancement below
        them."""
        g, lc = self._layers(t), self.cfg.lesions
        X, Z, rows = g["X"], g["Z"], g["rows"]
        out = np.full(X.shape, TISSUES.index("fibroglandular tissue"), dtype=np.uint8)
        fat = np.full((rows, X.shape[1]), TISSUES.index("subcutaneous fat"), dtype=np.uint8)
        fat[g["septa"]] = TISSUES.index("Cooper's ligament")
        out[:rows] = np.where(Z[:rows] < g["fat"], fat, out[:rows])
        out[(Z >= g["gland"]) & (Z < g["retro"])] = TISSUES.index("retromammary fat")
        out[Z >= g["retro"]] = TISSUES.index("pectoral muscle")
        out[Z < g["skin"]] = TISSUES.index("skin")
        for body in self.plan.lesions:
            m, hard, s = body_mask(body, X, Z, g["y"])
            if m is None:
                continue
            if body.posterior != 1.0:
                cols = hard.any(axis=0)[None]
                below = Z > (body.z + body.b * s * lc.posterior_start)
                reach = lc.shadow_falloff_mm if body.posterior < 1 else lc.enhancement_falloff_mm
                near = Z < body.z + body.b * s + reach
                kind = "posterior shadow" if body.posterior < 1 else "posterior enhancement"
                out[cols & below & near & ~hard] = TISSUES.index(kind)
            out[hard] = TISSUES.index("mass")
        return out

    def echo_map(self, t: int) -> tuple[np.ndarray, dict]:
        """Echogenicity at frame ``t`` and the ground truth boxes (mm, crop-relative)."""
        p, im, an = self.plan, self.cfg.imaging, self.cfg.anatomy
        lc, mc = self.cfg.lesions, self.cfg.mimics
        g = self._layers(t)
        y, xs, X, Z = g["y"], g["xs"], g["X"], g["Z"]
        b = p.boundaries
        z_fat, z_gland, z_retro = g["fat"], g["gland"], g["retro"]
        echo = np.full(X.shape, an.echo_gland, dtype=np.float32)
        gw = p.gland_waves
        # sum_k amp_k cos(kx x + kz z + ky y + ph) = Re(sum_k ez[:, k] ex[k, :]).
        coef = gw[:, 4] * np.exp(1j * (gw[:, 2] * y + gw[:, 3]))
        ez = np.exp(1j * np.outer(self.z, gw[:, 1])) * coef
        ex = np.exp(1j * np.outer(gw[:, 0], xs))
        # Summed wave by wave, in the order and with the roundings of summing the (z, k, x)
        # stack over k, without building it (no BLAS call either: a multi-threaded BLAS in
        # each of the worker processes would oversubscribe the cores).
        er, ei, xr, xi = ez.real, ez.imag, ex.real, ex.imag
        tex = er[:, 0:1] * xr[0] - ei[:, 0:1] * xi[0]
        term, other = np.empty_like(tex), np.empty_like(tex)
        for j in range(1, len(gw)):
            np.multiply(er[:, j : j + 1], xr[j], out=term)
            np.multiply(ei[:, j : j + 1], xi[j], out=other)
            tex += np.subtract(term, other, out=term)
        tex += 1.0
        echo *= np.clip(tex, *an.gland_texture_clip).astype(np.float32)
        # Subcutaneous fat lobules (Voronoi cells) separated by Cooper's ligaments.
        rows = g["rows"]
        fat_zone = Z < z_fat
        fat_echo = np.full((rows, X.shape[1]), an.echo_fat, dtype=np.float32)
        fat_echo[g["septa"]] = an.echo_septum
        echo[:rows] = np.where(fat_zone[:rows], fat_echo, echo[:rows])
        retro = (Z >= z_gland) & (Z < z_retro)
        echo = np.where(retro, an.echo_fat, echo)
        ang, period = p.muscle
        k = 2 * np.pi / period
        top = int(np.searchsorted(self.z, z_retro.min()))  # rows above hold no muscle
        stri = np.outer(
            np.exp(1j * k * np.cos(ang) * self.z), np.exp(1j * k * np.sin(ang) * xs)
        ).real[top:]
        muscle_echo = (
            an.echo_muscle + an.echo_fibre * np.clip(stri, 0, 1) ** an.muscle_striation_sharpness
        )
        echo = echo.astype(np.float64)  # as where() with the float64 muscle echo gives
        echo[top:] = np.where(Z[top:] >= z_retro, muscle_echo, echo[top:])
        echo = np.where(Z < b["skin"], an.echo_skin, echo)
        truth = {}
        for body in p.lesions:
            m, hard, s = body_mask(body, X, Z, y, core=True)
            if m is None:
                continue
            vis = body.visibility[t]
            echo = echo * (1 - m * vis * (1 - body.contrast))
            if body.posterior != 1.0:
                cols = m.max(axis=0)
                below = Z > (body.z + body.b * s * lc.posterior_start)
                fall = np.exp(
                    -np.maximum(Z - body.z - body.b * s, 0)
                    / (lc.shadow_falloff_mm if body.posterior < 1 else lc.enhancement_falloff_mm)
                )
                factor = 1 + (body.posterior - 1) * vis * cols[None] * fall * below
                echo = echo * factor
            area_px = int(hard.sum())
            if (
                area_px >= max(lc.annotate_min_px, 1)
                and s >= lc.annotate_min_section
                and 2 * np.sqrt(area_px / np.pi) * im.pixel_mm >= lc.annotate_min_diameter_mm
            ):
                rows, cols_ = np.nonzero(hard)
                truth[body.lesion_id] = (cols_.min(), rows.min(), cols_.max() + 1, rows.max() + 1)
        events = []
        for k, body in enumerate(p.mimics):
            vis = body.visibility[t]
            if vis <= 0:
                continue
            m, hard, _ = body_mask(body, X, Z, y)
            echo = echo * (1 - m * vis * (1 - body.contrast))
            if hard.any():
                rows, cols_ = np.nonzero(hard)
                events.append(
                    ("lobule_mimic", k, (cols_.min(), rows.min(), cols_.max() + 1, rows.max() + 1))
                )
        for k, a in enumerate(p.artifacts):
            if not (a.start <= t < a.stop):
                continue
            xm, hw = (a.x0 + a.x1) / 2, max((a.x1 - a.x0) / 2, 1e-3)
            if a.kind == "contact_loss":
                prof = np.sqrt(np.clip(1 - ((X - xm) / hw) ** 2, 0, 1)) * a.depth
                region = (
                    1
                    / (1 + np.exp(np.clip((Z - prof) / mc.contact_loss_edge_mm, -50, 50)))
                    * (np.abs(X - xm) < hw)
                )
                echo = echo * (1 - mc.contact_loss_darkening * region)
            else:
                lateral = np.abs(X - xm) < hw
                spacing = a.depth / mc.reverberation_bands
                for j in range(1, mc.reverberation_bands + 1):
                    band = np.exp(-0.5 * ((Z - j * spacing) / mc.reverberation_band_width_mm) ** 2)
                    echo = (
                        echo
                        + mc.reverberation_strength * (mc.reverberation_decay**j) * band * lateral
                    )
            c0 = int(np.searchsorted(xs, a.x0))
            c1 = int(np.searchsorted(xs, a.x1))
            r1 = min(im.height, int(a.depth / im.pixel_mm))
            events.append((a.kind, k, (max(c0, 0), 0, max(c1, c0 + 1), max(r1, 1))))
        return echo.astype(np.float32), {"lesions": truth, "events": events}

    def frame(self, t: int) -> tuple[np.ndarray, dict]:
        """The B-mode frame ``t`` (uint8, crop-sized) and its ground truth."""
        im, sw = self.cfg.imaging, self.cfg.sweep
        echo, truth = self.echo_map(t)
        if t > 0:
            rho = sw.speckle_correlation
            fresh = complex_scatterers(self.rng, self.scat.shape)
            self.scat = (rho * self.scat + np.sqrt(1 - rho * rho) * fresh).astype(np.complex64)
        env = envelope(echo, self.scat, self.transfer) * self.gain
        noise = complex_scatterers(self.rng, env.shape) * im.noise_amplitude
        env = reduce_speckle(np.abs(env + noise), self.smoothing)
        return log_compress(env, im), truth
