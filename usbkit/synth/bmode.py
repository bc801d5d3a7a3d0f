"""The convolution model of B-mode image formation.

echo map E (tissue echogenicity) x complex scatterers -> convolution with the point-spread
function (complex baseband, so the convolution output is the analytic RF signal) ->
envelope |.| -> depth gain (attenuation and time-gain compensation) -> speckle reduction
(a small Gaussian average of the echo intensity, as a scanner's compounding and
speckle-reduction filters do) -> log compression.

For a uniform region with many scatterers per resolution cell the envelope is Rayleigh
distributed: mean / standard deviation = sqrt(pi / (4 - pi)) = 1.913 ("fully developed
speckle"), which the tests check.
"""

from __future__ import annotations

import numpy as np

from usbkit.synth.config import ImagingConfig

RAYLEIGH_SNR = float(np.sqrt(np.pi / (4 - np.pi)))


def psf_transfer(shape: tuple[int, int], axial_px: float, lateral_px: float) -> np.ndarray:
    """Fourier transform of a unit-energy Gaussian PSF on a grid of ``shape`` (rows=depth)."""
    h, w = shape
    fz = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    # Gaussian with std s has FT exp(-2 pi^2 s^2 f^2); normalised so the PSF has unit energy.
    tf = np.exp(-2 * np.pi**2 * ((axial_px * fz) ** 2 + (lateral_px * fx) ** 2))
    energy = (np.abs(tf) ** 2).sum() / (h * w)
    return (tf / np.sqrt(energy)).astype(np.complex64)


def complex_scatterers(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-power circular complex Gaussian scatterer field (complex64).

    Real and imaginary parts are drawn together as one float32 array viewed as complex, so
    the field costs one pass of the generator.
    """
    pairs = rng.standard_normal((*shape, 2), dtype=np.float32)
    pairs *= np.float32(1 / np.sqrt(2))
    return pairs.view(np.complex64)[..., 0]


def envelope(echo: np.ndarray, scatterers: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """Envelope of the RF image: ``| PSF * (sqrt(echo) * scatterers) |``."""
    field = np.sqrt(np.maximum(echo, 0)).astype(np.float32) * scatterers
    rf = np.fft.ifft2(np.fft.fft2(field) * transfer)
    return np.abs(rf).astype(np.float32)


def gaussian_transfer(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Fourier transform of a unit-sum Gaussian of standard deviation ``sigma_px`` (pixels)."""
    h, w = shape
    fz = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.exp(-2 * np.pi**2 * sigma_px**2 * (fz**2 + fx**2)).astype(np.float32)


def reduce_speckle(env: np.ndarray, transfer: np.ndarray | None) -> np.ndarray:
    """Average the echo intensity ``env ** 2`` with a Gaussian (``transfer`` from
    :func:`gaussian_transfer`) and return its square root: speckle grains merge, the dark
    zeros of the speckle pattern fill in, tissue boundaries stay where they are."""
    if transfer is None:
        return env
    power = np.fft.irfft2(np.fft.rfft2(env * env) * transfer[:, : env.shape[1] // 2 + 1], env.shape)
    return np.sqrt(np.maximum(power, 0)).astype(np.float32)


def depth_gain(cfg: ImagingConfig) -> np.ndarray:
    """Per-row amplitude gain: attenuation with depth, partly restored by TGC."""
    z_cm = (np.arange(cfg.height) + 0.5) * cfg.pixel_mm / 10.0
    net_db = -cfg.attenuation_db_per_cm * z_cm * (1.0 - cfg.tgc_compensation)
    return (10 ** (net_db / 20.0)).astype(np.float32)[:, None]


def log_compress(env: np.ndarray, cfg: ImagingConfig) -> np.ndarray:
    """Map an envelope to 8-bit gray levels over ``dynamic_range_db``."""
    db = 20.0 * np.log10(np.maximum(env, 1e-6) / cfg.reference_amplitude)
    gray = (db + cfg.dynamic_range_db) / cfg.dynamic_range_db * 255.0
    return np.clip(np.round(gray), 0, 255).astype(np.uint8)
