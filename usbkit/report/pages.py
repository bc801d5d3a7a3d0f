"""The report's static viewer pages: one per clip, up to a cap, and an index with outcomes.

``usbkit report`` writes a self-contained viewer page (:mod:`usbkit.viewer.static_page`) for
every clip of the run's split, up to a cap chosen by size (:data:`DEFAULT_BUDGET_MB`: pages
are written until they take that much; ``--pages N`` writes N, ``--pages all`` every clip),
and ``OUT/scrubber/index.html``, which lists every clip with its outcome at the report's
operating point (lesions found and missed, false positives; "not annotated" on clips without
annotations, with each model's marks) and its page. When the cap leaves clips out, the
clips that say most come first: those where the models disagree on a lesion, then those
with a miss, then those with a false positive, then the rest, each group in the manifest's
order.
"""

from __future__ import annotations

import html
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.safeio import write_text

#: Without ``--pages``: pages are written until together they take this many megabytes
#: (a page of a clip of the built-in cohort is 0.4-0.6 MB, so about 100 clips).
DEFAULT_BUDGET_MB = 50
INDEX = "index.html"


@dataclass(frozen=True)
class PageCap:
    """How many viewer pages the report writes: ``count`` pages at most (None: no count
    limit) and, unless None, until they take ``budget_mb`` megabytes."""

    count: int | None = None
    budget_mb: float | None = DEFAULT_BUDGET_MB

    def describe(self) -> str:
        """The cap in words, for the index page."""
        if self.count is not None:
            return f"--pages {self.count}"
        if self.budget_mb is not None:
            return f"the default cap of {self.budget_mb:g} MB of pages"
        return "--pages all"


def parse_pages(value) -> PageCap:
    """``--pages``: ``auto`` (the default size cap), ``all``, or a number of pages."""
    text = str(value).strip().lower() if value is not None else "auto"
    if text in ("", "auto"):
        return PageCap()
    if text == "all":
        return PageCap(None, None)
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise UsbkitError(
            f"--pages {value!r} is not a number of pages, 'all' or 'auto'",
            fix="Give --pages 20, --pages all, or leave it out for the default cap "
            f"({DEFAULT_BUDGET_MB} MB of pages)",
        )
    return PageCap(n, None)


@dataclass
class ClipPages:
    """What :func:`write_report_pages` wrote: the index, the pages, the clips left out."""

    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    cap: PageCap = field(default_factory=PageCap)

    @property
    def megabytes(self) -> float:
        return sum(p.stat().st_size for p in self.pages.values()) / 1e6


def clip_table(scrubber) -> pd.DataFrame:
    """One row per clip the scrubber lists: ``clip_id``, ``patient_id``, ``lesions`` (their
    number, or "not annotated"), ``outcome: NAME`` per model and ``outcome`` (all of it) in
    words, ``priority`` (lower: written first when pages are capped)."""
    from usbkit.evaluation.froc import link_tracks
    from usbkit.viewer.clipview import MIN_SHOWN_SCORE

    study, names = scrubber.study, scrubber.names
    rows = scrubber.outcomes.copy()
    pid = study.manifest.set_index("clip_id")["patient_id"]
    rows["patient_id"] = rows["clip_id"].map(pid)
    thr = scrubber.thresholds
    if not scrubber.annotated:
        for name in names:
            det = scrubber.detections[name]
            det = det.loc[det["score"] >= MIN_SHOWN_SCORE]
            counts = []
            for cid in rows["clip_id"]:
                d = det.loc[det["clip_id"] == cid]
                if d.empty:
                    counts.append(0)
                    continue
                tid = link_tracks(
                    d["frame"].to_numpy(int),
                    d["score"].to_numpy(float),
                    d[["x0", "y0", "x1", "y1"]].to_numpy(float),
                )
                top = pd.Series(d["score"].to_numpy(float)).groupby(tid).max()
                counts.append(int((top >= thr[name]).sum()))
            rows[f"{name}: marks"] = counts
        rows["lesions"] = "not annotated"
        for n in names:
            rows[f"outcome: {n}"] = [_n(k, "mark") for k in rows[f"{n}: marks"]]
        rows["priority"] = 0
        return _joined(rows, names)
    lesions, priority = [], []
    for _, r in rows.iterrows():
        k = r[f"{names[0]}: found"] + r[f"{names[0]}: missed"]
        lesions.append(str(int(k)) if k else "none (lesion-free)")
        disagree = any(r[f"{b} found, {a} missed"] > 0 for a, b in itertools.permutations(names, 2))
        miss = any(r[f"{n}: missed"] > 0 for n in names)
        fp = any(r[f"{n}: FP marks"] > 0 for n in names)
        priority.append(0 if disagree else 1 if miss else 2 if fp else 3)
    rows["lesions"], rows["priority"] = lesions, priority
    for n in names:
        texts = []
        for _, r in rows.iterrows():
            found, missed, fp = r[f"{n}: found"], r[f"{n}: missed"], r[f"{n}: FP marks"]
            lesion = f"found {found} of {found + missed}, " if found + missed else ""
            texts.append(lesion + _n(fp, "false positive"))
        rows[f"outcome: {n}"] = texts
    return _joined(rows, names)


def _joined(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    rows["outcome"] = [
        f"lesions: {r['lesions']}; " + "; ".join(f"{n}: {r[f'outcome: {n}']}" for n in names)
        for _, r in rows.iterrows()
    ]
    return rows


def _n(k: int, noun: str) -> str:
    return f"{int(k)} {noun}{'' if int(k) == 1 else 's'}"


def write_report_pages(
    run_folder: str | Path, pages="auto", progress: bool = True
) -> ClipPages | None:
    """Write the run's viewer pages (every clip of its split, up to the cap ``pages``) and
    their index ``OUT/scrubber/index.html``; None when the run has no detections.

    Parameters
    ----------
    run_folder : str or Path
        The run (``OUT``, holding ``run.json``).
    pages : str, int or PageCap
        ``auto`` (pages until they take :data:`DEFAULT_BUDGET_MB` MB), ``all``, or N.
    progress : bool
        Show progress.
    """
    from tqdm.auto import tqdm

    from usbkit.report.run import Run
    from usbkit.report.steps import open_scrubber
    from usbkit.viewer.static_page import write_pages

    cap = pages if isinstance(pages, PageCap) else parse_pages(pages)
    run = Run.open(run_folder)
    if not run.detections:
        return None
    scrubber = open_scrubber(run.folder)
    table = clip_table(scrubber)
    order = table.sort_values("priority", kind="stable")["clip_id"].tolist()
    folder = run.scrubber_dir
    written: dict[str, Path] = {}
    total = 0
    for cid in tqdm(order, desc="viewer pages", unit="page", disable=not progress):
        if cap.count is not None and len(written) >= cap.count:
            break
        if cap.budget_mb is not None and total >= cap.budget_mb * 1e6:
            break
        (path,) = write_pages(
            scrubber.study,
            scrubber.detections,
            scrubber.thresholds,
            folder,
            [cid],
            hit=scrubber.hit,
            threshold_notes=scrubber.threshold_notes,
            annotated=scrubber.annotated,
            back=INDEX,
        )
        written[cid] = path
        total += path.stat().st_size
    # a page written before (the scrub notebook's) is listed too
    for cid in table["clip_id"]:
        if cid not in written and (folder / f"{cid}.html").exists():
            written[cid] = folder / f"{cid}.html"
    result = ClipPages(
        folder / INDEX, written, [c for c in table["clip_id"] if c not in written], cap
    )
    write_text(result.index, index_html(table, result, scrubber))
    return result


def index_html(table: pd.DataFrame, result: ClipPages, scrubber) -> str:
    """The page listing every clip with its outcome and a link to its viewer page."""
    names = scrubber.names
    if scrubber.annotated:
        thr = ", ".join(f"{n} ≥ {scrubber.thresholds[n]:.2f}" for n in names)
        intro = (
            "Each clip's outcome at the report's operating point (marks shown at "
            f"{html.escape(thr)}; {html.escape(scrubber.threshold_notes.get(names[0], ''))}), "
            f'judged by the hit rule "{html.escape(str(scrubber.hit))}": lesions found and '
            "missed, and false positives (one per linked track, as the report counts them)."
        )
    else:
        # each threshold with where it comes from, said once for the models that share it
        by_note: dict[str, list[str]] = {}
        for n in names:
            by_note.setdefault(scrubber.threshold_notes.get(n, ""), []).append(
                f"{n} ≥ {scrubber.thresholds[n]:.2f}"
            )
        thr = "; ".join(
            ", ".join(shown) + (f": {note}" if note else "") for note, shown in by_note.items()
        )
        intro = (
            "No lesion is annotated in these clips, so no mark is called a hit or a false "
            "positive: each clip lists how many marks (linked tracks) each model shows at "
            f"the threshold its viewer starts at ({html.escape(thr)})."
        )
    left = ""
    if result.left_out:
        left = (
            f"<p>{len(result.pages)} of {len(table)} clips have a page ({result.cap.describe()}"
            "; clips where the models disagree on a lesion, then clips with a miss, then with a "
            f"false positive come first). <code>usbkit report --pages all</code> writes every "
            "clip's page.</p>"
        )
    rows = []
    for _, r in table.iterrows():
        cid = r["clip_id"]
        page = result.pages.get(cid)
        link = (
            f"<a href='{html.escape(quote(page.name), quote=True)}'>open</a> ({page.stat().st_size / 1e6:.2f} MB)"
            if page
            else "no page"
        )
        cells = [cid, r["patient_id"], r["lesions"], *(r[f"outcome: {n}"] for n in names)]
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + f"<td>{link}</td></tr>"
        )
    return "\n".join(
        [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<title>usbkit report: clip viewer pages</title>",
            "<style>body{font-family:Arial,Helvetica,sans-serif;margin:24px;max-width:1100px;"
            "color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 10px;text-align:left;vertical-align:top}</style></head><body>",
            "<p><a href='../index.html'>← the report</a></p>",
            f"<h1>Clip viewer pages ({len(result.pages)} of {len(table)} clips)</h1>",
            f"<p>{intro}</p>",
            left,
            "<p>Each page is the clip viewer as one file that opens offline in any browser: "
            "the frames, the marks and, where there are annotations, the lesions.</p>",
            "<table><tr><th>clip</th><th>patient</th><th>lesions</th>"
            + "".join(f"<th>{html.escape(n)}</th>" for n in names)
            + "<th>viewer page</th></tr>",
            *rows,
            f"</table><p style='color:#777'>{len(result.pages)} pages, "
            f"{result.megabytes:.1f} MB.</p></body></html>",
        ]
    )


def pages_section(out: Path, pages: list[Path]) -> str:
    """The report front page's part on the viewer pages: a link to their index with a
    count, or (no index) the pages listed."""
    index = Path(out) / "scrubber" / INDEX
    clips = [p for p in pages if p.name != INDEX]
    if index.exists():
        mb = sum(p.stat().st_size for p in clips) / 1e6
        return (
            f"<p><a href='{html.escape(quote(os.path.relpath(index, out)), quote=True)}'>Every clip with its outcome</a>, "
            f"and a viewer page for {_n(len(clips), 'clip')} ({mb:.1f} MB): each opens "
            "offline in any browser.</p>"
        )
    items = "".join(
        f"<li><a href='{html.escape(quote(os.path.relpath(p, out)), quote=True)}'>"
        f"{html.escape(p.stem)}</a></li>"
        for p in clips
    )
    return f"<ul>{items}</ul>"


__all__ = [
    "DEFAULT_BUDGET_MB",
    "ClipPages",
    "PageCap",
    "clip_table",
    "index_html",
    "pages_section",
    "parse_pages",
    "write_report_pages",
]
