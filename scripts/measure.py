"""Run a command as the only child of this small process and report that child's own usage.

    python -S scripts/measure.py REPORT.json COMMAND [ARG...]

Writes {"returncode", "peak_rss_kib", "user_seconds", "system_seconds"} to REPORT.json and
exits with the command's status. stdin, stdout and stderr are the command's.

Why a separate process: Linux records a process's peak RSS (``ru_maxrss``) across exec, and a
freshly forked child's resident set is its parent's. A command started straight from a large
process (the benchmark, which also hosts the emulator) therefore reports the parent's
high-water mark: even ``/bin/true`` showed 300 MB. Started from here, the most a command can
inherit is this process's few megabytes. Only ``os``, ``json`` and ``sys`` are imported, and
``-S`` skips ``site``, to keep it that way.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    report, command = argv[0], argv[1:]
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    with open(report, "w") as out:
        json.dump(
            {
                "returncode": returncode,
                "peak_rss_kib": usage.ru_maxrss,  # KiB on Linux
                "user_seconds": usage.ru_utime,
                "system_seconds": usage.ru_stime,
            },
            out,
        )
    # A command killed by a signal gets a negative returncode; exit as a shell would.
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
