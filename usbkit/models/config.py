"""The typed configs of the detectors and of their training (no torch needed to read them).

``ModelConfig`` is saved in every checkpoint, ``TrainConfig`` in every run folder
(``RUN/config.json``); both are read back through :func:`usbkit.config.config_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from usbkit.config import config_from_dict, config_to_dict


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and working resolution.

    Attributes
    ----------
    kind : {'frame', 'sequence'}
    input_size : tuple of int
        Working resolution ``(height, width)`` every cropped frame is resized to.
    width : int
        Backbone channels at stride 4.
    window : int
        Frames of temporal context (current one included) for the sequence model.
    embed : int
        Channels of the attention embeddings.
    """

    kind: str = "frame"
    input_size: tuple[int, int] = (96, 112)
    width: int = 24
    window: int = 8
    embed: int = 8

    def to_dict(self) -> dict:
        """The config as plain JSON-ready values (saved in every checkpoint)."""
        return config_to_dict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``RUN/config.json``).

    Attributes
    ----------
    study : str
        Study folder.
    model : ModelConfig
        Architecture and working resolution.
    epochs : int
        Passes over the training windows.
    batch : int
        Windows per step.
    window_length : int
        Consecutive frames per training window.
    window_step : int
        Start-to-start distance of training windows.
    lr, weight_decay : float
        AdamW settings (cosine schedule with warm-up).
    seed : int
        Random seed.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    val_fp_rate : float
        FP/scan rate of the validation sensitivity used to keep the best epoch.
    train_split, val_split : str
        Splits used (``val_split`` may be empty: then no validation, the last epoch is kept).
    """

    study: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 15
    batch: int = 4
    window_length: int = 8
    window_step: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    val_fp_rate: float = 0.5
    train_split: str = "train"
    val_split: str = "val"

    def to_dict(self) -> dict:
        """The settings as plain JSON-ready values (nested ``model`` included)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Rebuild settings saved by :meth:`to_dict` (``config.json``, checkpoints)."""
        return config_from_dict(cls, d)
