"""``make report``'s run itself (install excluded) on the default study cohort, and optionally
the fresh-clone wall time with the install.

By default runs ``usbkit report --out reports/bench --overwrite`` in this working tree (the
`make report` command without the install; the default ``study`` cohort is synthesized afresh
inside it) and records its wall time, peak memory (the largest child process) and the test
split's patients, scans and lesions. With ``--fresh-clone`` it first clones the committed HEAD
into a temporary folder and times ``make report`` there, install included. With ``--keep`` the
run is the repository's default one, kept: ``--out reports/latest --figures figures`` (the
README's table and figures come from it). Budget: the run itself <= 15 min on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import record

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 900


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fresh-clone", action="store_true")
    p.add_argument(
        "--keep", action="store_true", help="run into reports/latest with --figures figures"
    )
    args = p.parse_args(argv)
    fresh = None
    if args.fresh_clone:
        tmp = Path(tempfile.mkdtemp())
        try:
            clone = tmp / "usbkit"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            fresh = timed(["make", "report", "OUT=reports/bench"], clone)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "reports" / ("latest" if args.keep else "bench")
    exe = ROOT / ".venv" / "bin" / "usbkit"
    figures = ["--figures", str(ROOT / "figures")] if args.keep else []
    run = timed([str(exe), "report", "--out", str(out), "--overwrite", *figures], ROOT)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res = json.loads((out / "results" / "results.json").read_text())
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    print(f"run itself {run:.0f} s")
    record(
        "`make report` (default study cohort, shipped checkpoints)",
        [
            "run itself (s), `usbkit report --out DIR --overwrite`"
            + (" (with `--figures figures`)" if args.keep else ""),
            "budget (s)",
            "peak RSS of a process (MiB)",
            "test patients / scans / lesions",
            "fresh clone with install (s)",
        ],
        [
            [
                f"{run:.0f}",
                BUDGET_S,
                f"{peak:.0f}",
                f"{res['n_patients']} / {res['n_clips']} / {res['n_lesions']}",
                "-" if fresh is None else f"{fresh:.0f}",
            ]
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
