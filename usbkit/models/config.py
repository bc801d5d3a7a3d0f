"""The typed configs of the detectors and of their training (no torch needed to read them).

``ModelConfig`` is saved in every checkpoint, ``TrainConfig`` in every run folder
(``RUN/config.json``); both are read back through :func:`usbkit.config.config_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from usbkit.config import config_from_dict, config_to_dict, setting_problem

#: ModelConfig fields that only a sequence model's temporal part uses
TEMPORAL_SETTINGS = ("window", "embed", "temporal", "context", "compound")


def setting_differences(a, b) -> list[tuple[str, object, object]]:
    """``(name, value in a, value in b)`` for every setting in which two configs differ: two
    :class:`ModelConfig`, or two :class:`TrainConfig` with their models (model settings
    first). The study and the model kind are not compared.

    Examples
    --------
    >>> setting_differences(TrainConfig(lr=0.002), TrainConfig(model=ModelConfig(width=16)))
    [('width', 32, 16), ('lr', 0.002, 0.003)]
    """
    pairs = [(a.model, b.model), (a, b)] if isinstance(a, TrainConfig) else [(a, b)]
    model_a = a.model if isinstance(a, TrainConfig) else a
    model_b = b.model if isinstance(b, TrainConfig) else b
    skip = {"study", "model", "kind"}
    if model_a.kind == model_b.kind == "frame":  # no temporal part to differ in
        skip |= set(TEMPORAL_SETTINGS)
    return [
        (f.name, getattr(x, f.name), getattr(y, f.name))
        for x, y in pairs
        for f in fields(x)
        if f.name not in skip and getattr(x, f.name) != getattr(y, f.name)
    ]


def _check(ok: bool, message: str) -> None:
    setting_problem(ok, message)  # raised, or gathered while a config file is read


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and working resolution.

    Attributes
    ----------
    kind : {'frame', 'sequence'}
        Single-frame detector, or the sequence detector with temporal context.
    input_size : tuple of int
        Working resolution ``(height, width)`` every cropped frame is resized to. The default,
        160 x 192, was chosen by measurement (``benchmarks/bench_resolution.py``): the largest
        candidate at which a 3 mm mass on a 40 mm-wide clip spans at least 3 output cells, the
        sequence detector runs at twice its 30 frames/s budget on one core, and a full
        training with the default recipe (81,920 frame visits) fitted in 20 minutes on a
        2-core CPU when the shipped detectors were trained (192 x 224 then took 21 minutes;
        since the temporal attention became cheaper it fits too, see benchmarks/README.md).
    width : int
        Backbone channels at stride 4.
    blocks : tuple of int
        Residual blocks of the backbone at strides 4, 8 and 16 (checkpoints written before
        this setting existed are read as ``(0, 1, 1)``, the network they hold).
    window : int
        Frames of temporal context on each side, the current one included, for the sequence
        model: ``window - 1`` frames before each frame, and with ``context='both'`` as many
        after it. 12 was chosen on validation clips over 8 and 16 (docs/temporal.md).
    embed : int
        Channels of the temporal part's embeddings.
    temporal : {'residual', 'attention'}
        The sequence model's temporal part: a correction of the single-frame heat map from
        the neighbouring frames, starting at zero (``residual``,
        :class:`usbkit.models.detector.TemporalResidual`); or the earlier causal attention
        over past frames' features (``attention``; checkpoints written before this setting
        existed are read as that network).
    context : {'both', 'causal'}
        Which neighbours the sequence model reads: frames before and after (``both``: stored
        cine reviewed after the scan, the study's setting; each frame's marks wait for the
        ``window - 1`` following frames) or only earlier ones (``causal``: live use, no
        delay). The ``attention`` part is causal.
    compound : int
        Frames on each side of the current one (``context='both'``; twice as many before it
        with ``causal``) whose single-frame features the residual temporal part averages
        before the single-frame head reads them, one more input of its correction: speckle
        and noise change from frame to frame while a mass stays, so the average shows a faint
        mass more clearly (what compounding does on a scanner). 0: no compounding, the
        shipped detector (2 was measured on three validation cohorts: better boxes, fewer
        masses found at scan level, docs/temporal.md), and what checkpoints written before
        this setting hold.
    antialias : bool
        Shrink frames to the working resolution by averaging every pixel a working pixel
        covers (``torch``'s antialiased bilinear) instead of interpolating between the four
        nearest (the default, with which the shipped detectors were trained): a large scanner
        image (a still 1000 pixels across is shrunk five times) then reaches the network
        without its speckle aliased into coarse noise (the README's still-image commands use
        it; on the cine cohort the shipped detectors do without).
    """

    kind: str = "frame"
    input_size: tuple[int, int] = (160, 192)
    width: int = 32
    blocks: tuple[int, int, int] = (1, 2, 2)
    window: int = 12
    embed: int = 8
    temporal: str = "residual"
    context: str = "both"
    compound: int = 0
    antialias: bool = False

    def __post_init__(self) -> None:
        _check(
            self.kind in ("frame", "sequence"), f"model kind '{self.kind}' is not frame or sequence"
        )
        h, w = self.input_size
        _check(
            int(h) == h and int(w) == w and h >= 32 and w >= 32 and h % 16 == 0 and w % 16 == 0,
            f"input size {h}x{w} must be two whole multiples of 16, at least 32",
        )
        _check(self.width >= 4 and self.width % 4 == 0, "width must be a multiple of 4")
        _check(self.window >= 1 and self.embed >= 1, "window and embed must be at least 1")
        _check(
            self.temporal in ("residual", "attention"),
            f"temporal '{self.temporal}' is not one of residual, attention",
        )
        _check(
            self.context in ("both", "causal"),
            f"context '{self.context}' is not one of both, causal",
        )
        _check(
            not (self.temporal == "attention" and self.context == "both"),
            "the attention temporal part reads only earlier frames: use context causal",
        )
        _check(
            0 <= self.compound
            and self.compound * (1 if self.context == "both" else 2) <= self.window - 1,
            f"compound {self.compound} must be 0 or more and reach no further than the window "
            f"({self.window - 1} frames on each side; a causal model compounds twice as many "
            "earlier frames)",
        )
        _check(
            not (self.temporal == "attention" and self.compound),
            "only the residual temporal part compounds: use compound 0 with temporal attention",
        )
        _check(
            isinstance(self.antialias, bool),
            f"antialias {self.antialias!r} must be true or false (yes or no on the command line)",
        )
        _check(
            len(self.blocks) == 3 and all(int(b) == b and 0 <= b <= 8 for b in self.blocks),
            f"blocks {self.blocks} must be three whole numbers from 0 to 8",
        )

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
        Training epochs (the most: early stopping may end the run sooner).
    frames_per_epoch : int
        Frame visits per epoch (windows x their length), drawn as a seeded shuffle of every
        training window, repeated as needed; so an epoch costs the same whatever the number
        and length of the clips. 0: every window once per epoch.
    batch : int
        Windows per step.
    workers : int
        Data-loading worker processes (``torch.utils.data.DataLoader``): they read frames
        from the memory-mapped cache, resize, augment and build the targets while the model
        trains. 0 loads in the training process.
    window_length : int
        Consecutive frames per training window.
    window_step : int
        Start-to-start distance of training windows.
    lr : float
        Peak learning rate of AdamW (one epoch of warm-up, then a cosine decay).
    weight_decay : float
        AdamW weight decay.
    ema : float
        Decay of the exponential moving average of the weights that is validated and saved
        (per step; 0 turns it off and the trained weights themselves are used). The decay
        ramps up as ``min(ema, (1 + n) / (10 + n))`` over the first steps.
    patience : int
        Early stopping: end the run when the validation key (``select_by``) has not improved
        for this many epochs (0: never stop early; needs a validation split).
    select_by : {'ap50', 'jafroc'}
        The validation key that keeps the best epoch and stops the run early: frame-level
        AP50 with the JAFROC figure of merit as tie-break (``ap50``), or the JAFROC figure of
        merit with the sensitivity at ``val_fp_rate`` as tie-break (``jafroc``). AP50 is the
        default because it is computed over every annotated frame of the validation clips
        (thousands of boxes), so it moves smoothly from epoch to epoch; the scan-level
        JAFROC of a validation split of some twenty lesions jumps by whole lesions (it had
        kept an earlier single-frame checkpoint at epoch 8 of 16 while its validation AP50
        went on rising). A run saved before this setting existed resumes with ``jafroc``.
    seed : int
        Random seed.
    device : str
        ``auto`` (a GPU when there is one), ``cpu``, ``cuda`` or ``mps``.
    val_fp_rate : float
        FP/scan rate of the validation sensitivity (the tie-break of ``select_by='jafroc'``)
        and of the operating point a checkpoint carries.
    train_split : str
        The split the model learns from.
    val_split : str
        The split that picks the best epoch (empty: no validation, the last epoch is kept).
    heat_radius : {'proportional', 'centernet'}
        Spread of each box's centre peak in the target heat map: a quarter of the box's
        geometric mean size (``proportional``), or CenterNet's radius at which a shifted box
        keeps IoU 0.7 with the true one (``centernet``).
    box_loss : {'l1-log', 'giou'}
        How box sizes are learned: L1 on the log size (``l1-log``), or L1 on the log size plus
        the generalised IoU of the decoded box with the true box (``giou``, scale-aware).
    augment : {'basic', 'ultrasound', 'none'}
        Training augmentation: horizontal flip and gain (``basic``); or also gamma, a depth
        (time-gain) ramp, speckle-like multiplicative noise, and a zoom (random crop or
        shrink), shift and small rotation of the image, the same for every frame of a window
        (``ultrasound``); or nothing (``none``).
    init : str
        Weights to start from instead of random ones (fine-tuning): a training run folder,
        a ``.pt`` checkpoint, or ``pretrained:frame`` / ``pretrained:sequence`` (the shipped
        detectors). The network is the starting checkpoint's: model settings that differ
        from it are an error (``antialias``, how frames are resized, is not part of the
        network). Empty: random initial weights. A sequence detector may start from a
        single-frame checkpoint of the same network: it takes that checkpoint's backbone and
        head, and its temporal part starts as the identity (it changes nothing yet).
    train_part : {'all', 'temporal'}
        Which weights learn: all of them, or only a sequence detector's temporal part
        (``temporal``: the single-frame part stays exactly as ``init`` gave it, batch
        statistics included; needs ``init``). Training only the temporal part on top of the
        trained single-frame detector is how the shipped sequence detector was made
        (docs/temporal.md): its comparison with the single-frame detector then measures
        what reading the neighbouring frames adds, and nothing else.
    scan_loss : float
        Weight of the scan-level peak loss added to the focal loss when training only the
        temporal part (:func:`usbkit.models.temporal_training.scan_loss`): each lesion's best
        mark over its clip pushed up, the clip's highest marks on background pushed down, as
        the study's rules count them. Only with ``train_part='temporal'``. 0: the focal loss
        alone, as the shipped detector was trained (1 was measured on three validation cohorts
        and found no more masses, docs/temporal.md).
    """

    study: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 20
    frames_per_epoch: int = 4096
    batch: int = 4
    workers: int = 1
    window_length: int = 8
    window_step: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    ema: float = 0.995
    patience: int = 8
    select_by: str = "ap50"
    seed: int = 0
    device: str = "auto"
    val_fp_rate: float = 0.5
    train_split: str = "train"
    val_split: str = "val"
    heat_radius: str = "centernet"
    box_loss: str = "giou"
    augment: str = "basic"
    init: str = ""
    train_part: str = "all"
    scan_loss: float = 0.0

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs {self.epochs} must be at least 1")
        _check(self.batch >= 1, f"batch {self.batch} must be at least 1")
        _check(
            self.window_length >= 1 and self.window_step >= 1, "windows need length and step >= 1"
        )
        _check(self.lr > 0 and self.weight_decay >= 0, "lr must be above 0, weight_decay >= 0")
        _check(self.seed >= 0, f"seed {self.seed} must be 0 or more")
        _check(self.frames_per_epoch >= 0, "frames_per_epoch must be 0 or more")
        _check(self.workers >= 0, "workers must be 0 or more")
        _check(0 <= self.ema < 1, f"ema {self.ema} must be from 0 up to (not including) 1")
        _check(self.patience >= 0, "patience must be 0 or more")
        _check(self.scan_loss >= 0, f"scan_loss {self.scan_loss} must be 0 or more")
        _check(
            self.scan_loss == 0 or self.train_part == "temporal",
            "scan_loss is used only when training the temporal part alone: add train_part "
            "temporal (--train-part temporal) or leave scan_loss at 0",
        )
        _check(self.val_fp_rate > 0, f"val_fp_rate {self.val_fp_rate} must be above 0")
        _check(isinstance(self.init, str), f"init {self.init!r} must be a checkpoint or empty")
        for name, value, allowed in (
            ("heat_radius", self.heat_radius, ("proportional", "centernet")),
            ("box_loss", self.box_loss, ("l1-log", "giou")),
            ("augment", self.augment, ("basic", "ultrasound", "none")),
            ("select_by", self.select_by, ("ap50", "jafroc")),
            ("train_part", self.train_part, ("all", "temporal")),
        ):
            _check(value in allowed, f"{name} '{value}' is not one of {', '.join(allowed)}")

    def to_dict(self) -> dict:
        """The settings as plain JSON-ready values (nested ``model`` included)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Rebuild settings saved by :meth:`to_dict` (``config.json``, checkpoints)."""
        return config_from_dict(cls, d)

    def with_settings(self, settings: dict | None) -> TrainConfig:
        """These settings changed by a flat dict of any :class:`TrainConfig` and
        :class:`ModelConfig` fields side by side (what a notebook's ``train_settings``
        parameter holds); a misspelt name is an error naming the known ones.

        Examples
        --------
        >>> c = TrainConfig().with_settings({"input_size": [192, 224], "lr": 0.002})
        >>> c.model.input_size, c.lr
        ((192, 224), 0.002)
        """
        settings = dict(settings or {})
        model_names = set(ModelConfig.__dataclass_fields__) - {"kind"}
        data = self.to_dict()
        data.update({k: v for k, v in settings.items() if k not in model_names})
        data["model"] = {**data["model"], **{k: settings[k] for k in model_names & set(settings)}}
        return config_from_dict(TrainConfig, data, source="train_settings")
