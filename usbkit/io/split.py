"""Patient-level train/val/test split, stratified by pathology, deterministic from a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from usbkit.errors import UsbkitError

_RANK = {"malignant": 2, "benign": 1, "normal": 0}


def patient_pathology(manifest: pd.DataFrame) -> pd.Series:
    """One pathology per patient: the most serious of its clips (malignant > benign > normal)."""
    if "pathology" not in manifest.columns:
        return pd.Series("unknown", index=sorted(manifest["patient_id"].unique()))
    rank = manifest["pathology"].map(_RANK).fillna(-1)
    worst = rank.groupby(manifest["patient_id"]).max()
    inv = {v: k for k, v in _RANK.items()}
    return worst.map(lambda r: inv.get(int(r), "unknown")).sort_index()


def split_patients(
    manifest: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> pd.DataFrame:
    """Assign every patient to train, val or test.

    Within each pathology stratum, patients are shuffled with ``seed`` and cut by
    ``fractions`` (largest-remainder rounding), so each split keeps the cohort's mix of
    benign, malignant and normal scans and no patient is in two splits.

    Parameters
    ----------
    manifest : DataFrame
        Must have ``patient_id``; ``pathology`` is used for stratification when present.
    fractions : tuple of float
        Train, val and test fractions (normalised to sum to 1).
    seed : int
        Random seed.

    Returns
    -------
    DataFrame
        A copy of the manifest with the ``split`` column set.
    """
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise UsbkitError(
            f"split fractions {fractions} are not three non-negative numbers",
            fix="Give train,val,test fractions such as 0.6,0.2,0.2",
        )
    f = f / f.sum()
    rng = np.random.default_rng(seed)
    strata = patient_pathology(manifest)
    assign: dict[str, str] = {}
    names = np.array(["train", "val", "test"])
    for _, patients in strata.groupby(strata, sort=True):
        ids = np.array(sorted(patients.index))
        rng.shuffle(ids)
        raw = f * len(ids)
        counts = np.floor(raw).astype(int)
        for k in np.argsort(-(raw - counts), kind="stable")[: len(ids) - counts.sum()]:
            counts[k] += 1
        labels = np.repeat(names, counts)
        assign.update(zip(ids, labels))
    out = manifest.copy()
    out["split"] = out["patient_id"].map(assign)
    return out
