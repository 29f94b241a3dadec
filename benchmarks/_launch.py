"""Run one command and write its wall time and resource usage as JSON: ``python _launch.py OUT CMD…``.

Why a launcher: Linux records the peak RSS of the memory image a process had *before* ``exec`` into its
``ru_maxrss``. A child forked (or vforked) straight from the benchmark runner, which holds built
projects, emulator records and profiles in memory, would report the runner's RSS as its own peak. This
small process is the parent instead, so the measured child starts from a ~10 MB image. Wall time is
taken here, around the child alone, so this interpreter's own start is not in it. The child inherits
this process's stdin, stdout, stderr, working directory and environment.
"""

import json
import os
import subprocess
import sys
import time


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"returncode": proc.returncode, "wall": wall, "started": started,
                   "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                   "oublock": usage.ru_oublock}, handle)


if __name__ == "__main__":
    main()
