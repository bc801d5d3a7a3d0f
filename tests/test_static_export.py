"""Static figure export (kaleido + system Chromium) on a slow, busy machine: every image is
drawn, at its figure's own size, a failed image is drawn again, and an error names the real
cause (Chromium missing, or the machine too busy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

from usbkit.errors import UsbkitError
from usbkit.report.figures import browser_path, static_export, style_figure, write_static

pytestmark = pytest.mark.skipif(browser_path() is None, reason="no system Chromium")


def _figure(k: int = 0) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, k, 1]))
    fig = style_figure(fig, f"figure {k}")
    fig.update_layout(width=880, height=300)
    return fig


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def test_static_figures_are_drawn_at_their_own_size_not_in_a_default_canvas(tmp_path):
    """A strip of frames (880 x 300) used to come out in a 700 x 500 canvas."""
    with static_export():
        write_static(_figure(), tmp_path / "strip.png", "png", scale=2)
    assert _png_size(tmp_path / "strip.png") == (1760, 600)
    write_static(_figure(), tmp_path / "alone.png", "png", scale=1)  # outside a block too
    assert _png_size(tmp_path / "alone.png") == (880, 300)


def test_static_export_beside_a_busy_loop_draws_every_image(tmp_path):
    """Two processes spinning on the processor (a machine at full load) while eight images
    are drawn: every one is written."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with static_export():
            for k in range(4):
                for ext, scale in (("png", 2), ("svg", 1)):
                    write_static(_figure(k), tmp_path / f"f{k}.{ext}", ext, scale)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    for k in range(4):
        assert (tmp_path / f"f{k}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"f{k}.svg").read_text().lstrip().startswith("<svg")


def test_an_image_that_failed_is_drawn_again_in_a_fresh_browser(tmp_path, monkeypatch):
    import kaleido

    calls = []
    batch = kaleido.write_fig_from_object_sync

    def first_image_times_out_once(specs, **kw):
        calls.append(len(specs))
        if len(calls) == 1:  # as if Chromium had been too slow for the first image
            return (TimeoutError(), *(batch(specs[1:], **kw) or ()))
        return batch(specs, **kw)

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", first_image_times_out_once)
    with static_export():
        for k in range(3):
            write_static(_figure(k), tmp_path / f"f{k}.png", "png")
    assert calls == [3, 1]  # only the failed image is drawn again
    assert all((tmp_path / f"f{k}.png").stat().st_size > 0 for k in range(3))


def test_export_that_times_out_says_the_machine_was_busy_not_that_chromium_is_missing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("USBKIT_EXPORT_TIMEOUT", "0.001")
    with pytest.raises(UsbkitError) as failed:
        write_static(_figure(), tmp_path / "f.png", "png")
    message = str(failed.value)
    assert "took longer than 0.001 s" in message and "too busy" in message
    assert "Chromium is installed" in message and "apt-get install" not in message
    assert "USBKIT_EXPORT_TIMEOUT" in message
    assert not (tmp_path / "f.png").exists()


def test_a_drawing_cancelled_when_its_time_ran_out_reads_as_a_busy_machine_not_a_missing_chromium(
    tmp_path, monkeypatch
):
    import asyncio

    import kaleido
    from choreographer.channels import ChannelClosedError

    def cancelled_on_timeout(specs, **kw):  # what kaleido returns when it cancels a drawing
        try:
            raise ChannelClosedError("Executor is closed.") from asyncio.CancelledError()
        except ChannelClosedError as closed:
            return [closed for _ in specs]

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", cancelled_on_timeout)
    with pytest.raises(UsbkitError) as failed:
        write_static(_figure(), tmp_path / "f.png", "png")
    message = str(failed.value)
    assert "too busy" in message and "Chromium did not start" not in message
    assert not (tmp_path / "f.png").exists()


def test_export_without_a_working_chromium_says_chromium_did_not_start(tmp_path, monkeypatch):
    fake = tmp_path / "not-a-browser"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    with pytest.raises(UsbkitError) as failed:
        write_static(_figure(), tmp_path / "f.png", "png")
    message = str(failed.value)
    assert "Chromium did not start" in message and str(fake) in message
    assert "apt-get install chromium" in message and "too busy" not in message
