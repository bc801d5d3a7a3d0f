"""Every parameter of the synthetic cohort, in one typed config saved beside the study."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class ImagingConfig:
    """B-mode image formation (convolution model).

    Attributes
    ----------
    height, width : int
        B-mode image size in pixels (depth x lateral).
    pixel_mm : float
        Pixel size in millimetres (both axes).
    psf_axial_px, psf_lateral_px : float
        Gaussian point-spread-function widths (standard deviations, pixels).
    dynamic_range_db : float
        Log-compression dynamic range mapped onto 0-255.
    reference_amplitude : float
        Envelope amplitude shown as white.
    attenuation_db_per_cm : float
        Round-trip tissue attenuation at the centre frequency.
    tgc_compensation : float
        Fraction of the attenuation that time-gain compensation restores.
    noise_amplitude : float
        Electronic noise (complex Gaussian) added before envelope detection.
    ui_border : bool
        Put the B-mode image inside a scanner screen with burned-in text.
    screen_height, screen_width : int
        Screen size when ``ui_border`` is on.
    """

    height: int = 160
    width: int = 192
    pixel_mm: float = 0.22
    psf_axial_px: float = 0.9
    psf_lateral_px: float = 1.6
    dynamic_range_db: float = 48.0
    reference_amplitude: float = 8.5
    attenuation_db_per_cm: float = 6.0
    tgc_compensation: float = 0.85
    noise_amplitude: float = 0.015
    ui_border: bool = True
    screen_height: int = 208
    screen_width: int = 256


@dataclass(frozen=True)
class SweepConfig:
    """Freehand probe motion.

    Attributes
    ----------
    frames : tuple of int
        Range of clip lengths (frames).
    fps_choices : tuple of int
        Frame rates drawn per clip.
    speed_mm_per_frame : tuple of float
        Elevational probe speed range.
    jitter_px : float
        Standard deviation of lateral hand jitter (pixels).
    speckle_correlation : float
        Frame-to-frame correlation of the scatterer field (decorrelation as the plane moves).
    """

    frames: tuple[int, int] = (36, 56)
    fps_choices: tuple[int, ...] = (15, 20, 25, 30)
    speed_mm_per_frame: tuple[float, float] = (0.25, 0.4)
    jitter_px: float = 0.8
    speckle_correlation: float = 0.75


@dataclass(frozen=True)
class LesionConfig:
    """Masses.

    Attributes
    ----------
    size_mm : tuple of float
        Range of the largest diameter (log-uniform).
    contrast : tuple of float
        Lesion/background echogenicity ratio range (lower is darker).
    per_scan : tuple of int
        Number of lesions in a scan of a patient with a mass.
    lesion_free_clip_fraction : float
        Fraction of further clips of a lesion patient that miss the lesion.
    malignant_fraction, normal_fraction : float
        Patient mix.
    visibility_jitter : float
        Strength of frame-to-frame contrast change from probe pressure and angle.
    dip_rate : float
        Probability per frame that a poor-visibility stretch starts.
    dip_frames : tuple of int
        Length range of a poor-visibility stretch.
    dip_visibility : float
        Visibility during a dip (0 = invisible, 1 = full contrast).
    """

    size_mm: tuple[float, float] = (3.0, 30.0)
    contrast: tuple[float, float] = (0.02, 0.2)
    per_scan: tuple[int, int] = (1, 2)
    lesion_free_clip_fraction: float = 0.25
    malignant_fraction: float = 0.4
    normal_fraction: float = 0.25
    visibility_jitter: float = 0.25
    dip_rate: float = 0.04
    dip_frames: tuple[int, int] = (2, 5)
    dip_visibility: float = 0.3


@dataclass(frozen=True)
class MimicConfig:
    """What a single-frame detector trips on: mass-like fat lobules and transient artifacts.

    Attributes
    ----------
    lobule_mimics_per_clip : float
        Mean number (Poisson) of fat lobules that look like a mass in a few frames.
    lobule_frames : tuple of int
        How many frames a mimic looks mass-like.
    lobule_contrast : tuple of float
        Darkest echogenicity ratio a mimic reaches.
    lobule_size_mm : tuple of float
        Mimic diameter range.
    artifacts_per_100_frames : float
        Rate (Poisson) of transient artifacts.
    artifact_frames : tuple of int
        Duration range of an artifact.
    contact_loss_fraction : float
        Share of artifacts that are loss-of-contact shadows (the rest are reverberations).
    """

    lobule_mimics_per_clip: float = 1.5
    lobule_frames: tuple[int, int] = (2, 5)
    lobule_contrast: tuple[float, float] = (0.04, 0.3)
    lobule_size_mm: tuple[float, float] = (3.0, 9.0)
    artifacts_per_100_frames: float = 3.0
    artifact_frames: tuple[int, int] = (2, 5)
    contact_loss_fraction: float = 0.6


@dataclass(frozen=True)
class SynthConfig:
    """The whole synthetic cohort.

    Attributes
    ----------
    preset : str
        ``quick`` (small, for laptops and tests) or ``paper`` (506 patients like the study).
    seed : int
        One seed gives byte-identical annotations and identical decoded frames.
    patients : int
        Number of patients.
    clips_per_patient : tuple of int
        Range of clips (sweeps) per patient.
    split_fractions : tuple of float
        Train/val/test fractions of patients.
    crf : int
        H.264 quality (lower is better, larger files).
    """

    preset: str = "quick"
    seed: int = 0
    patients: int = 48
    clips_per_patient: tuple[int, int] = (1, 2)
    split_fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    crf: int = 20
    imaging: ImagingConfig = field(default_factory=ImagingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    lesions: LesionConfig = field(default_factory=LesionConfig)
    mimics: MimicConfig = field(default_factory=MimicConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        sub = {
            "imaging": ImagingConfig,
            "sweep": SweepConfig,
            "lesions": LesionConfig,
            "mimics": MimicConfig,
        }
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            v = data[f.name]
            if f.name in sub:
                v = sub[f.name](**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
            elif isinstance(v, list):
                v = tuple(v)
            kwargs[f.name] = v
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> SynthConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def preset_config(preset: str = "quick", patients: int | None = None, seed: int = 0) -> SynthConfig:
    """The config of a named preset, optionally with another patient count or seed."""
    if preset == "quick":
        cfg = SynthConfig(preset="quick", seed=seed)
    elif preset == "paper":
        cfg = SynthConfig(
            preset="paper",
            seed=seed,
            patients=506,
            clips_per_patient=(1, 3),
            sweep=SweepConfig(frames=(60, 120)),
        )
    else:
        from usbkit.errors import UsbkitError

        raise UsbkitError(f"unknown preset '{preset}'", fix="Use quick or paper")
    if patients is not None:
        cfg = replace(cfg, patients=int(patients))
    return cfg
