"""``make report`` wall time from a fresh clone (install included) and the run itself.

Clones the repository's committed HEAD into a temporary folder and runs ``make report`` there
(a new ``.venv``: CPU torch from the local wheel, then usbkit and its dependencies), then runs
``make report`` a second time in the same clone, which skips the install. Budgets: <= 15 min
with the install, the run itself <= 8 min.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import record

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        clone = tmp / "usbkit"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        fresh = timed(["make", "report", "OUT=reports/bench"], clone)
        shutil.rmtree(clone / "reports" / "bench")
        again = timed(["make", "report", "OUT=reports/bench"], clone)
        record(
            "`make report` (default quick cohort, shipped checkpoints)",
            ["fresh clone, install included (s)", "budget (s)", "run itself (s)", "budget (s)"],
            [[f"{fresh:.0f}", 900, f"{again:.0f}", 480]],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
