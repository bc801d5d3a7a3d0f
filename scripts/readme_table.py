"""Put the default run's table, and the words the report prints under it, into README.md.

After ``make report`` (or ``make figures``), run from the repository root:

    .venv/bin/python scripts/readme_table.py --run-seconds 512

It copies ``reports/latest/results/table.md`` and the findings generated from
``reports/latest/results/results.json`` (the same function the report's index page uses) between
the README's ``<!-- study-table:begin -->`` and ``<!-- study-table:end -->`` markers, so that
the README's numbers come from the run, never from typed text. ``--run-seconds`` is the run's
measured wall time (``/usr/bin/time``), printed with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def section(report: Path, run_seconds: float | None) -> str:
    from usbkit.report.findings import findings_markdown

    table = (report / "results" / "table.md").read_text(encoding="utf-8").strip()
    results = json.loads((report / "results" / "results.json").read_text(encoding="utf-8"))
    import os

    when = ""
    if run_seconds is not None:
        m, s = divmod(round(run_seconds), 60)
        when = f" (the run itself {m} min {s} s on {os.cpu_count()} cores, {cpu_name()})"
    return (
        f"`make report` on the default `study` cohort (seed 0), with the shipped "
        f"checkpoints{when}. The table and the words under it are what "
        "`reports/latest/results/table.md` and the report's index page print:\n\n"
        + table
        + "\n\n"
        + findings_markdown(results)
        + "\n"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--report", default=str(ROOT / "reports" / "latest"))
    p.add_argument("--run-seconds", type=float, default=None)
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    args = p.parse_args(argv)
    from usbkit.safeio import write_between_markers

    text = section(Path(args.report), args.run_seconds)
    write_between_markers(args.readme, "study-table", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
