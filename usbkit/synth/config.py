"""Every parameter of the synthetic cohort, in one typed config saved beside the study."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class ScreenConfig:
    """The scanner screen drawn around the B-mode image (when ``ImagingConfig.ui_border`` is on).

    Text is made of random glyph bitmaps; every position and size is in screen pixels and
    every level is an 8-bit gray level (0-255).

    Attributes
    ----------
    background_level : int
        Gray level (0-255) of the screen outside the image.
    image_top_min_px : int
        Smallest distance (pixels) from the top of the screen to the image, which leaves room
        for the header text.
    glyph_px : tuple of int
        Glyph bitmap size (rows, columns), pixels.
    glyph_ink_probability : float
        Probability that a glyph pixel is lit.
    char_advance_px : int
        Horizontal distance (pixels) from one character to the next.
    space_probability : float
        Probability that a character is a space.
    patient_text_xy_px : tuple of int
        Top-left corner (x, y), pixels, of the patient-name line.
    patient_text_chars : int
        Characters in the patient-name line.
    patient_text_level : int
        Gray level (0-255) of the patient-name line.
    date_text_chars : int
        Characters in the date line, right-aligned at the top.
    date_text_right_margin_px : int
        Gap (pixels) between the end of the date line and the right edge of the screen.
    date_text_level : int
        Gray level (0-255) of the date line (its top is at the patient line's y).
    settings_rows : int
        Number of lines in the settings column left of the image.
    settings_x_px : int
        Left edge (pixels) of the settings column.
    settings_first_row_px : int
        Distance (pixels) from the image top to the first settings line.
    settings_row_spacing_px : int
        Distance (pixels) between settings lines.
    settings_chars : int
        Characters in a settings line.
    settings_level : int
        Gray level (0-255) of the settings column.
    scale_tick_spacing_px : int
        Distance (pixels) between the depth-scale ticks right of the image.
    scale_gap_px : int
        Gap (pixels) between the image's right edge and the ticks.
    scale_tick_px : tuple of int
        Length (pixels) of the major and the minor ticks (they alternate, major first).
    scale_level : int
        Gray level (0-255) of the depth-scale ticks.
    """

    background_level: int = 6
    image_top_min_px: int = 40
    glyph_px: tuple[int, int] = (14, 10)
    glyph_ink_probability: float = 0.45
    char_advance_px: int = 12
    space_probability: float = 0.15
    patient_text_xy_px: tuple[int, int] = (8, 6)
    patient_text_chars: int = 22
    patient_text_level: int = 230
    date_text_chars: int = 12
    date_text_right_margin_px: int = 4
    date_text_level: int = 200
    settings_rows: int = 3
    settings_x_px: int = 4
    settings_first_row_px: int = 20
    settings_row_spacing_px: int = 20
    settings_chars: int = 4
    settings_level: int = 180
    scale_tick_spacing_px: int = 44
    scale_gap_px: int = 6
    scale_tick_px: tuple[int, int] = (12, 6)
    scale_level: int = 200


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
        Log-compression dynamic range (dB) mapped onto gray levels 0-255.
    reference_amplitude : float
        Envelope amplitude shown as white (envelope units, where fully developed speckle of
        unit echogenicity has unit mean power).
    attenuation_db_per_cm : float
        Round-trip tissue attenuation at the centre frequency (dB/cm).
    tgc_compensation : float
        Fraction (ratio, 0-1) of the attenuation that time-gain compensation restores.
    noise_amplitude : float
        Electronic noise (complex Gaussian) added before envelope detection (envelope units,
        standard deviation).
    speckle_reduction_px : float
        Standard deviation (pixels) of the Gaussian average of the echo intensity that
        stands for the scanner's compounding and speckle-reduction processing (0: raw
        speckle).
    ui_border : bool
        Put the B-mode image inside a scanner screen with burned-in text.
    screen_height, screen_width : int
        Screen size in pixels when ``ui_border`` is on.
    screen : ScreenConfig
        Layout of that screen.
    """

    height: int = 320
    width: int = 384
    pixel_mm: float = 0.11
    psf_axial_px: float = 1.8
    psf_lateral_px: float = 3.2
    dynamic_range_db: float = 50.0
    reference_amplitude: float = 6.0
    attenuation_db_per_cm: float = 6.0
    tgc_compensation: float = 0.85
    noise_amplitude: float = 0.015
    speckle_reduction_px: float = 1.5
    ui_border: bool = True
    screen_height: int = 416
    screen_width: int = 512
    screen: ScreenConfig = field(default_factory=ScreenConfig)


@dataclass(frozen=True)
class SweepConfig:
    """Freehand probe motion.

    Attributes
    ----------
    frames : tuple of int
        Range of clip lengths (frames, inclusive).
    fps_choices : tuple of int
        Frame rates (frames per second) drawn per clip.
    speed_mm_per_frame : tuple of float
        Elevational probe speed range (mm per frame).
    start_y_mm : tuple of float
        Range of the elevational position (mm) of the first frame's plane in the tissue.
    jitter_px : float
        Scale of the lateral hand jitter (pixels): the jitter is an AR(1) process whose
        per-frame innovation has a standard deviation of half this.
    jitter_ar : float
        AR(1) coefficient (per frame, 0-1) of the lateral hand jitter; closer to 1 is a
        smoother, slower drift.
    speckle_correlation : float
        Frame-to-frame correlation (0-1) of the scatterer field (decorrelation as the plane
        moves).
    """

    frames: tuple[int, int] = (36, 56)
    fps_choices: tuple[int, ...] = (15, 20, 25, 30)
    speed_mm_per_frame: tuple[float, float] = (0.25, 0.4)
    start_y_mm: tuple[float, float] = (0.0, 40.0)
    jitter_px: float = 1.6
    jitter_ar: float = 0.85
    speckle_correlation: float = 0.75


@dataclass(frozen=True)
class AnatomyConfig:
    """Breast anatomy of a linear-probe view: layers, their echogenicity and texture.

    Depths are in mm below the skin surface (the top of the image); layer boundaries
    undulate as a sum of sine waves over the lateral and elevational position. Echogenicities
    are backscattered energy relative to fibroglandular tissue (ratio, gland = 1).

    Attributes
    ----------
    skin_thickness_mm : tuple of float
        Range of the skin thickness (mm).
    fat_depth_mm : tuple of float
        Range of the mean depth (mm, skin included) of the boundary between subcutaneous fat
        and fibroglandular tissue.
    gland_thickness_mm : tuple of float
        Range of the fibroglandular layer thickness (mm).
    retromammary_thickness_mm : tuple of float
        Range of the retromammary fat thickness (mm) above the pectoral muscle.
    boundary_waves : int
        Number of sine waves summed to make each layer boundary undulate.
    boundary_wave_amplitude_mm : tuple of float
        Amplitude range (mm) of each boundary wave.
    boundary_wave_lateral_period_mm, boundary_wave_elevational_period_mm : tuple of float
        Period ranges (mm) of the boundary waves along the lateral and elevational axes.
    lobule_volume_mm3 : float
        Tissue volume (mm^3) per subcutaneous fat lobule: the number of lobule (Voronoi) seeds
        is image width x seeded elevational extent x (fat depth +
        ``lobule_count_depth_margin_mm``) / this.
    lobule_count_depth_margin_mm : float
        Depth (mm) added to the fat depth in that seed count.
    lobule_seed_lateral_margin_mm : float
        Seeds are scattered this far (mm) beyond the image's left and right edges.
    lobule_seed_elevational_margin_mm : float
        Seeds are scattered this far (mm) beyond both ends of the sweep.
    lobule_seed_depth_margin_mm : float
        Seeds are scattered from the skin down to this far (mm) below the fat depth.
    lobule_neighbour_radius_mm : float
        Only seeds within this elevational distance (mm) of the imaging plane shape its
        lobules (a cut-off that keeps the Voronoi search small).
    septum_width_mm : float
        A fat pixel is a septum (Cooper's ligament) where the distances (mm) to its two
        nearest seeds differ by less than this.
    gland_texture_waves : int
        Number of random plane waves summed into the fibroglandular texture.
    gland_texture_lateral_period_mm, gland_texture_axial_period_mm : float
        Typical periods (mm) of the texture along the lateral and depth axes (each wave's
        wavenumber is normal with standard deviation 2 pi / period).
    gland_texture_elevational_period_mm : float
        Typical texture period (mm) along the elevational axis (how fast the texture changes
        from frame to frame as the plane moves).
    gland_texture_amplitude : tuple of float
        Amplitude range of each texture wave (ratio of the gland echogenicity).
    gland_texture_clip : tuple of float
        The texture's echogenicity factor (ratio, 1 = plain gland) is clipped to this range.
    muscle_striation_angle_rad : tuple of float
        Range of the tilt (rad) of the pectoral muscle's striations from horizontal.
    muscle_striation_period_mm : tuple of float
        Range of the striation period (mm).
    muscle_striation_sharpness : int
        Exponent applied to the (positive half of the) striation cosine: higher gives thinner
        bright fibres.
    echo_skin, echo_fat, echo_septum, echo_gland, echo_muscle : float
        Echogenicity (ratio to fibroglandular tissue) of skin, fat (subcutaneous and
        retromammary), fat septa (Cooper's ligaments), fibroglandular tissue and the muscle
        between its fibres.
    echo_fibre : float
        Echogenicity (ratio) added at the centre of a bright muscle fibre.
    """

    skin_thickness_mm: tuple[float, float] = (0.5, 0.8)
    fat_depth_mm: tuple[float, float] = (4.0, 9.0)
    gland_thickness_mm: tuple[float, float] = (14.0, 19.0)
    retromammary_thickness_mm: tuple[float, float] = (1.5, 3.0)
    boundary_waves: int = 3
    boundary_wave_amplitude_mm: tuple[float, float] = (0.3, 1.6)
    boundary_wave_lateral_period_mm: tuple[float, float] = (8.0, 35.0)
    boundary_wave_elevational_period_mm: tuple[float, float] = (10.0, 40.0)
    lobule_volume_mm3: float = 60.0
    lobule_count_depth_margin_mm: float = 2.0
    lobule_seed_lateral_margin_mm: float = 5.0
    lobule_seed_elevational_margin_mm: float = 10.0
    lobule_seed_depth_margin_mm: float = 2.5
    lobule_neighbour_radius_mm: float = 8.0
    septum_width_mm: float = 0.35
    gland_texture_waves: int = 10
    gland_texture_lateral_period_mm: float = 4.0
    gland_texture_axial_period_mm: float = 6.0
    gland_texture_elevational_period_mm: float = 4.0
    gland_texture_amplitude: tuple[float, float] = (0.1, 0.3)
    gland_texture_clip: tuple[float, float] = (0.3, 2.0)
    muscle_striation_angle_rad: tuple[float, float] = (-0.35, 0.35)
    muscle_striation_period_mm: tuple[float, float] = (1.2, 2.2)
    muscle_striation_sharpness: int = 6
    echo_skin: float = 6.0
    echo_fat: float = 0.04
    echo_septum: float = 0.9
    echo_gland: float = 1.0
    echo_muscle: float = 0.12
    echo_fibre: float = 0.7


@dataclass(frozen=True)
class ShapeConfig:
    """Outline of a mass or mass-like lobule: an ellipse with harmonics, spicules, a soft edge.

    Malignant masses are *irregular* (larger harmonics, spicules, a wide blurred edge);
    benign masses and fat-lobule mimics are *smooth*. Radial deformations are fractions of
    the body's radius.

    Attributes
    ----------
    harmonic_orders : tuple of int
        Lowest and highest order (inclusive; order n has n cycles per turn) of the radial
        harmonics cos(n theta).
    smooth_harmonic_amplitude, irregular_harmonic_amplitude : tuple of float
        Range of the radial amplitude (ratio of the radius) drawn per harmonic; the
        harmonic of order n gets this x 2 / n (a 1/n fall-off, normalised at order 2).
    spicules : tuple of int
        Range (inclusive) of the number of spicules of an irregular mass.
    spicule_amplitude : tuple of float
        Range of a spicule's radial length (ratio of the radius).
    spicule_width_rad : tuple of float
        Range of a spicule's angular width (rad, standard deviation of a Gaussian bump).
    smooth_edge_mm, irregular_edge_mm : tuple of float
        Range of the width (mm) of the blurred margin.
    """

    harmonic_orders: tuple[int, int] = (2, 6)
    smooth_harmonic_amplitude: tuple[float, float] = (0.0, 0.03)
    irregular_harmonic_amplitude: tuple[float, float] = (0.03, 0.1)
    spicules: tuple[int, int] = (5, 11)
    spicule_amplitude: tuple[float, float] = (0.15, 0.45)
    spicule_width_rad: tuple[float, float] = (0.03, 0.07)
    smooth_edge_mm: tuple[float, float] = (0.08, 0.18)
    irregular_edge_mm: tuple[float, float] = (0.3, 0.6)


@dataclass(frozen=True)
class LesionConfig:
    """Masses.

    Attributes
    ----------
    size_mm : tuple of float
        Range of the largest diameter (mm, log-uniform).
    contrast : tuple of float
        Lesion/background echogenicity ratio range (lower is darker).
    per_scan : tuple of int
        Number of lesions (inclusive range) in a scan of a patient with a mass.
    lesion_free_clip_fraction : float
        Fraction (probability) of further clips of a lesion patient that miss the lesion.
    malignant_fraction, normal_fraction : float
        Patient mix (fraction of patients).
    benign_aspect_ratio, malignant_aspect_ratio : tuple of float
        Range of the depth/width diameter ratio; above 1 is taller than wide.
    elevational_ratio : tuple of float
        Range of the elevational semi-axis as a ratio of the larger in-plane semi-axis.
    sweep_position : tuple of float
        Where along the sweep (ratio of the sweep length) the lesion's centre lies.
    lateral_range : tuple of float
        Lateral span (ratio of the image width) for the lesion's centre, further kept a
        semi-axis away from the image edges.
    fat_clearance_mm : float
        The centre is drawn in the fibroglandular band (where masses arise): at least this far
        (mm) plus half the lesion's depth below the fat-gland boundary, and half its depth
        above the band's bottom (the band's middle when the lesion is thicker than the band).
    depth_margin_mm : float
        The lesion is kept this far (mm) from the top and bottom of the image.
    benign_angle_rad, malignant_angle_rad : tuple of float
        Range of the tilt (rad) of the lesion's long axis from horizontal.
    shadow_probability : float
        Probability that a malignant mass casts a posterior acoustic shadow.
    shadow_factor : tuple of float
        Range of the echogenicity factor (ratio) right behind a shadowing mass.
    shadow_falloff_mm : float
        Depth (mm, exponential decay length) over which a shadow fades.
    enhancement_probability : float
        Probability that a benign mass shows posterior acoustic enhancement.
    enhancement_factor : tuple of float
        Range of the echogenicity factor (ratio) right behind an enhancing mass.
    enhancement_falloff_mm : float
        Depth (mm, exponential decay length) over which an enhancement fades.
    posterior_start : float
        The posterior feature starts this far below the centre (ratio of the axial semi-axis
        of the current section).
    visibility_jitter : float
        Strength (ratio of full contrast) of frame-to-frame contrast change from probe
        pressure and angle.
    visibility_ar : float
        AR(1) coefficient (per frame) of that contrast change.
    visibility_innovation : float
        Standard deviation of the AR(1) innovation (per frame); sqrt(1 - visibility_ar^2)
        gives the noise unit variance.
    visibility_baseline : float
        Mean visibility (ratio of full contrast: 0 = invisible, 1 = full) outside dips.
    visibility_range : tuple of float
        Visibility (ratio) is clipped to this range outside dips.
    dip_rate : float
        Probability per frame that a poor-visibility stretch starts.
    dip_frames : tuple of int
        Length range (frames, inclusive) of a poor-visibility stretch.
    dip_visibility : float
        Visibility during a dip (ratio of full contrast: 0 = invisible, 1 = full).
    annotate_min_diameter_mm : float
        A lesion is boxed in every frame where its section (the mass's outline without its
        spicules, which are thin and blurred by the point-spread function) is at least this
        wide: the diameter (mm) of the circle of the section's area. An annotator boxes a mass
        wherever it can be seen, as it enters and leaves the plane too, not only near its
        largest section; a mark on a visible mass is never a false positive. Below about 2 mm
        the rim of a mass reads as speckle.
    annotate_min_section : float
        Further, optional: box only where the section is at least this large (ratio of the
        largest section's size); 0 (the default) boxes by the diameter alone. Cohorts made
        before 2026-11-26 used 0.5, which left the ends of each passage unboxed.
    annotate_min_px : int
        Further, optional: box only where the section covers at least this many pixels.
    """

    size_mm: tuple[float, float] = (4.0, 25.0)
    contrast: tuple[float, float] = (0.01, 0.12)
    per_scan: tuple[int, int] = (1, 2)
    lesion_free_clip_fraction: float = 0.25
    malignant_fraction: float = 0.4
    normal_fraction: float = 0.25
    benign_aspect_ratio: tuple[float, float] = (0.5, 0.8)
    malignant_aspect_ratio: tuple[float, float] = (0.85, 1.35)
    elevational_ratio: tuple[float, float] = (0.7, 1.0)
    sweep_position: tuple[float, float] = (0.3, 0.7)
    lateral_range: tuple[float, float] = (0.2, 0.8)
    fat_clearance_mm: float = 1.0
    depth_margin_mm: float = 2.0
    benign_angle_rad: tuple[float, float] = (-0.15, 0.15)
    malignant_angle_rad: tuple[float, float] = (-0.6, 0.6)
    shadow_probability: float = 0.7
    shadow_factor: tuple[float, float] = (0.25, 0.5)
    shadow_falloff_mm: float = 12.0
    enhancement_probability: float = 0.5
    enhancement_factor: tuple[float, float] = (1.3, 1.8)
    enhancement_falloff_mm: float = 5.0
    posterior_start: float = 0.8
    visibility_jitter: float = 0.12
    visibility_ar: float = 0.8
    visibility_innovation: float = 0.6
    visibility_baseline: float = 0.85
    visibility_range: tuple[float, float] = (0.5, 1.0)
    dip_rate: float = 0.04
    dip_frames: tuple[int, int] = (2, 5)
    dip_visibility: float = 0.3
    annotate_min_diameter_mm: float = 2.0
    annotate_min_section: float = 0.0
    annotate_min_px: int = 1


@dataclass(frozen=True)
class MimicConfig:
    """What a single-frame detector trips on: mass-like fat lobules and transient artifacts.

    Attributes
    ----------
    lobule_mimics_per_clip : float
        Mean number (Poisson) of fat lobules that look like a mass in a few frames.
    lobule_frames : tuple of int
        How many frames (inclusive range) a mimic looks mass-like.
    lobule_contrast : tuple of float
        Darkest echogenicity ratio a mimic reaches.
    lobule_size_mm : tuple of float
        Mimic diameter range (mm).
    lobule_aspect_ratio : tuple of float
        Range of the mimic's depth/width ratio.
    lobule_profile_exponent : float
        Visibility over the mimic's frames is sin(pi s) ** this (s from 0 to 1); lower makes
        it appear and vanish more abruptly.
    lobule_lateral_range : tuple of float
        Lateral span (ratio of the image width) for the mimic's centre.
    lobule_depth_mm : tuple of float
        Range of the mimic's centre depth (mm) relative to the fat-gland boundary.
    lobule_depth_margin_mm : tuple of float
        The mimic is kept this far (mm) from the top and the bottom of the image.
    lobule_angle_rad : tuple of float
        Range of the tilt (rad) of the mimic's long axis from horizontal.
    artifacts_per_100_frames : float
        Rate (Poisson, per 100 frames) of transient artifacts.
    artifact_frames : tuple of int
        Duration range (frames, inclusive) of an artifact.
    contact_loss_fraction : float
        Share (probability) of artifacts that are loss-of-contact shadows (the rest are
        reverberations).
    artifact_lateral_range : tuple of float
        Lateral span (ratio of the image width) for the artifact's centre.
    contact_loss_half_width_mm, reverberation_half_width_mm : tuple of float
        Range of the artifact's lateral half-width (mm).
    artifact_depth_mm : tuple of float
        Range of the depth (mm) an artifact reaches.
    contact_loss_darkening : float
        Fraction (ratio) of the echo removed inside a loss-of-contact shadow.
    contact_loss_edge_mm : float
        Softness (mm, logistic scale) of the shadow's lower edge.
    reverberation_bands : int
        Number of bright bands of a reverberation, evenly spaced down to its depth.
    reverberation_strength : float
        Echogenicity (ratio) added by the first band.
    reverberation_decay : float
        Ratio of each band's strength to the previous band's.
    reverberation_band_width_mm : float
        Thickness (mm, Gaussian standard deviation) of a band.
    """

    lobule_mimics_per_clip: float = 0.75
    lobule_frames: tuple[int, int] = (2, 5)
    lobule_contrast: tuple[float, float] = (0.02, 0.2)
    lobule_size_mm: tuple[float, float] = (3.0, 9.0)
    lobule_aspect_ratio: tuple[float, float] = (0.55, 0.9)
    lobule_profile_exponent: float = 0.5
    lobule_lateral_range: tuple[float, float] = (0.15, 0.85)
    lobule_depth_mm: tuple[float, float] = (-1.0, 8.0)
    lobule_depth_margin_mm: tuple[float, float] = (1.5, 2.0)
    lobule_angle_rad: tuple[float, float] = (-0.3, 0.3)
    artifacts_per_100_frames: float = 1.5
    artifact_frames: tuple[int, int] = (2, 5)
    contact_loss_fraction: float = 0.6
    artifact_lateral_range: tuple[float, float] = (0.1, 0.9)
    contact_loss_half_width_mm: tuple[float, float] = (3.0, 7.0)
    reverberation_half_width_mm: tuple[float, float] = (8.0, 20.0)
    artifact_depth_mm: tuple[float, float] = (6.0, 18.0)
    contact_loss_darkening: float = 0.9
    contact_loss_edge_mm: float = 0.5
    reverberation_bands: int = 4
    reverberation_strength: float = 1.2
    reverberation_decay: float = 0.7
    reverberation_band_width_mm: float = 0.25


@dataclass(frozen=True)
class SynthConfig:
    """The whole synthetic cohort.

    Attributes
    ----------
    preset : str
        ``quick`` (small, for teaching and tests), ``study`` (the default comparison: a
        test split of at least 150 lesions) or ``paper`` (506 patients like the study).
    seed : int
        One seed gives byte-identical annotations and identical decoded frames.
    patients : int
        Number of patients.
    clips_per_patient : tuple of int
        Range (inclusive) of the number of clips (sweeps) per patient.
    split_fractions : tuple of float
        Train/val/test fractions of patients.
    crf : int
        H.264 constant rate factor (x264 quality scale 0-51; lower is better, larger files).
    imaging : ImagingConfig
        Image formation and the scanner screen.
    sweep : SweepConfig
        Probe motion.
    lesions : LesionConfig
        Masses: placement, proportions, posterior features, visibility over time.
    mimics : MimicConfig
        Mass-like fat lobules and transient artifacts.
    anatomy : AnatomyConfig
        Tissue layers, echogenicities and textures.
    shape : ShapeConfig
        Outlines of masses and mimics.
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
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)

    def to_json(self) -> str:
        """The whole config as JSON (saved as ``synth_config.json`` beside the study)."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        """Rebuild a config from its JSON dict (missing sections take their defaults)."""
        from usbkit.config import config_from_dict

        return config_from_dict(cls, data)

    @classmethod
    def load(cls, path: str | Path) -> SynthConfig:
        """Read a ``synth_config.json``."""
        from usbkit.config import load_config

        return load_config(cls, path)


#: The named cohort presets of ``usbkit synth --preset``.
PRESETS = ("quick", "study", "paper")


def preset_config(preset: str = "quick", patients: int | None = None, seed: int = 0) -> SynthConfig:
    """The config of a named preset, optionally with another patient count or seed.

    ``quick``: 48 patients (train/val/test 60/15/25%), a report in about two minutes.
    ``study``: 200 patients of whom 65% are test patients, so that the test split holds at
    least 150 lesions (about 175) for the default comparison, while training uses a
    separate cohort (the shipped checkpoints were trained on another seed's cohort).
    ``paper``: 506 patients like the study, longer sweeps.

    Examples
    --------
    >>> preset_config("study").patients, preset_config("study").split_fractions
    (200, (0.25, 0.1, 0.65))
    """
    if preset == "quick":
        cfg = SynthConfig(preset="quick", seed=seed)
    elif preset == "study":
        cfg = SynthConfig(
            preset="study", seed=seed, patients=200, split_fractions=(0.25, 0.1, 0.65)
        )
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

        raise UsbkitError(f"unknown preset '{preset}'", fix=f"Use one of: {', '.join(PRESETS)}")
    if patients is not None:
        cfg = replace(cfg, patients=int(patients))
    return cfg
