"""Shared helpers: machine description and appending a result table to benchmarks/README.md."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

README = Path(__file__).with_name("README.md")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torch

    try:
        import av

        av_v = av.__version__
    except ImportError:
        av_v = "n/a"
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"torch {torch.__version__}, PyAV {av_v}"
    )


def git_rev() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=README.parent,
            ).stdout.strip()
            or "?"
        )
    except OSError:
        return "?"


def record(title: str, header: list[str], rows: list[list], note: str = "") -> str:
    """Print a markdown table and put it, dated, in benchmarks/README.md: in place of the
    earlier table of the same title, else at the end."""
    lines = [
        f"### {title}",
        "",
        f"{_dt.datetime.now():%Y-%m-%d %H:%M} · commit {git_rev()} · {machine()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    if note:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    print(text)
    doc = README.read_text(encoding="utf-8")
    head = f"### {title}\n"
    if head in doc:  # the latest run replaces the earlier one (older runs: git history)
        start = doc.index(head)
        end = doc.find("\n### ", start + len(head))
        doc = doc[:start] + text + (doc[end:] if end >= 0 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    README.write_text(doc, encoding="utf-8")
    return text


def long_clip_study(dest: Path) -> Path:
    """A one-patient synthetic study whose clip has 300 frames at 30 fps and a lesion (the
    viewer benchmarks' clip), written to ``dest``."""
    from dataclasses import replace

    from usbkit.synth import preset_config, synthesize

    cfg = preset_config("quick", patients=1, seed=3)
    cfg = replace(
        cfg,
        sweep=replace(cfg.sweep, frames=(300, 300), fps_choices=(30,)),
        lesions=replace(cfg.lesions, normal_fraction=0.0),
        split_fractions=(0, 0, 1),
    )
    return synthesize(dest, config=cfg, progress=False)
