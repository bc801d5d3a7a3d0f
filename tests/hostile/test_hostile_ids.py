"""Hostile suite (issue 27): ids of any characters `check` accepts go through every CSV
usbkit writes and reads unchanged; ids that would disguise what is shown are refused."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import pattern_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_faults_io import _clip_study

from usbkit.errors import UsbkitError
from usbkit.io.encode import write_gif
from usbkit.io.ids import normalize_id, unsafe_name_reason, unsafe_text_reason

_GIF = None


def _gif() -> Path:
    global _GIF
    if _GIF is None:
        _GIF = Path(tempfile.mkdtemp()) / "a.gif"
        write_gif(pattern_frames(n=4), _GIF)
    return _GIF


def _accepted(text: str) -> bool:
    """Whether `check` accepts ``text`` as a clip id as it is (no change by normalising)."""
    return normalize_id(text) == text and unsafe_name_reason(text) is None


#: Text of any script, punctuation (',', '"', ';', quotes), symbols and inner spaces; the
#: characters `check` refuses in clip ids are left out before the rest is filtered.
clip_ids = st.text(
    st.characters(
        exclude_categories=("Cc", "Cs", "Zl", "Zp"),
        exclude_characters="/\\\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f",
    )
    | st.sampled_from(",\"' ;"),
    min_size=1,
    max_size=12,
).filter(_accepted)


def _fake_detector(monkeypatch):
    """`usbkit detect` with a stand-in network: one box per frame (the real writer runs)."""
    from usbkit.models import detect

    monkeypatch.setattr(detect, "load_checkpoint", lambda ref, dev=None: SimpleNamespace(
        cfg=SimpleNamespace(kind="frame")))  # fmt: skip
    monkeypatch.setattr(detect, "operating_point_of", lambda ref: None)

    def boxes(model, clip, device=None):
        for f in range(len(clip)):
            yield f, np.array([[10.0, 10.0, 30.0, 30.0]]), np.array([0.8])

    monkeypatch.setattr(detect, "detect_clip", boxes)
    return detect


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(clip_ids, min_size=2, max_size=3, unique=True))
def test_ids_check_accepts_round_trip_detect_to_evaluate(monkeypatch, ids):
    """Any ids `check` accepts (commas, quotes, line ends of any script...) are written by
    `detect`, read by `evaluate` and found in its results unchanged."""
    from usbkit.evaluation.results import EvalConfig, evaluate_study
    from usbkit.io.detections import load_detections
    from usbkit.io.study import load_study
    from usbkit.safeio import write_csv

    detect = _fake_detector(monkeypatch)
    root = Path(tempfile.mkdtemp())
    try:
        (root / "clips").mkdir()
        rows = []
        for k, cid in enumerate(ids):
            shutil.copy(_gif(), root / "clips" / f"{k}.gif")
            rows.append({"clip_id": cid, "patient_id": cid, "path": f"clips/{k}.gif"})
        write_csv(root / "manifest.csv", pd.DataFrame(rows))
        write_csv(
            root / "annotations.csv",
            pd.DataFrame([{"clip_id": ids[0], "frame": 1, "lesion_id": ids[-1], "x0": 10,
                           "y0": 10, "x1": 30, "y1": 30}]),
        )  # fmt: skip
        assert sorted(load_study(root).manifest["clip_id"]) == sorted(ids)
        det = detect.detect_study(root, "fake", root / "det.csv", progress=False)
        loaded = load_detections(det, set(ids))
        assert sorted(set(loaded["clip_id"])) == sorted(ids)
        results = evaluate_study(root, {"m": det}, root / "E", EvalConfig(n_boot=3), progress=False)
        assert results["models"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_clip_id_with_comma_and_quote_survives_detect(tmp_path, monkeypatch):
    """The campaign's case: `P0004,C1` and `a"b` as clip ids, through the detections file."""
    from usbkit.io.detections import load_detections

    detect = _fake_detector(monkeypatch)
    root = _clip_study(
        tmp_path / "s",
        'clip_id,patient_id,path\n"P0004,C1",p1,clips/a.gif\n"a""b",p2,clips/a.gif\n',
    )
    det = detect.detect_study(root, "fake", tmp_path / "det.csv", progress=False)
    assert set(load_detections(det, {"P0004,C1", 'a"b'})["clip_id"]) == {"P0004,C1", 'a"b'}


@pytest.mark.parametrize("char", ["\u202e", "\u2067", "\x1b", "\u2028"])
def test_patient_and_lesion_ids_with_control_characters_are_refused(tmp_path, char):
    from usbkit.io.check import check_study

    root = _clip_study(
        tmp_path / "s",
        f"clip_id,patient_id,path\na,P{char}001,clips/a.gif\n",
        f"clip_id,frame,lesion_id,x0,y0,x1,y1\na,1,L{char}1,10,10,30,30\n",
    )
    found = [str(p) for p in check_study(root, progress=False)]
    code = f"U+{ord(char):04X}"
    assert [p for p in found if "manifest.csv, row 2: patient id" in p and code in p], found
    assert [p for p in found if "annotations.csv, row 2: lesion id" in p and code in p], found


def test_every_text_usbkit_shows_is_screened_like_clip_ids():
    assert unsafe_text_reason("P 001/7") is None
    assert "U+202E" in unsafe_text_reason("P\u202e1")


@pytest.mark.parametrize("spec", ["=det.csv", " =det.csv", "a\u202eb=det.csv"])
def test_an_empty_or_disguised_model_name_is_refused(tmp_path, spec, capsys):
    from usbkit import cli

    (tmp_path / "det.csv").write_text("clip_id,frame,score,x0,y0,x1,y1\n")
    code = cli.main(["--quiet", "evaluate", str(tmp_path), "--detections", spec, "--out",
                     str(tmp_path / "E")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "model name" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "E").exists()


def test_a_long_list_of_problems_says_how_many_and_how_many_shown(tmp_path):
    from usbkit.io.detections import load_detections

    det = tmp_path / "det.csv"
    det.write_text("clip_id,frame,score,x0,y0,x1,y1\n" + "a,1,7,1,1,2,2\n" * 500)
    with pytest.raises(UsbkitError) as info:
        load_detections(det)
    head = str(info.value).splitlines()[0]
    assert "(500 found, the first 20 shown)" in head, head
    assert "(20 found)" not in str(info.value)
