"""`perf pipeline`: a command's wall time and the peak resident memory of its process
tree."""

from __future__ import annotations

import contextlib
import time


def perf_pipeline(command: str, interval: float = 0.2) -> int:
    """Run ``command`` and print its wall time and the peak of the summed resident memory
    of its whole process tree (sampled every ``interval`` s: DVC, each stage, each
    worker). Summing counts the pages that
    forked processes share once per process, so the figure errs on the high side."""
    import shlex
    import subprocess

    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(shlex.split(command))
    root = psutil.Process(proc.pid)
    peak_total = peak_single = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        rss = []
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss.append(p.memory_info().rss)
        peak_total = max(peak_total, sum(rss))
        peak_single = max(peak_single, max(rss, default=0))
        time.sleep(interval)
    code = proc.wait()
    seconds = time.perf_counter() - start
    print(f"`{command}` exited {code} after {seconds:.0f} s ({seconds / 60:.1f} min)")
    print(
        f"  peak resident memory: {peak_total / 2**30:.2f} GiB summed over the process tree, "
        f"{peak_single / 2**30:.2f} GiB in one process (sampled every {interval} s)"
    )
    return code
