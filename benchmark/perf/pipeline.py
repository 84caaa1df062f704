"""`perf pipeline`: a command's wall time and the peak memory of its process tree."""

from __future__ import annotations

import contextlib
import time


def perf_pipeline(command: str, interval: float = 0.2) -> int:
    """Run ``command`` and print its wall time and the peak memory of its whole process
    tree (sampled every ``interval`` s: DVC, each stage, each worker), two ways: the
    summed resident set sizes, which count the pages forked processes share once per
    process (so it errs on the high side), and, on Linux, the summed proportional set
    sizes (PSS: a shared page split between its sharers), which is the tree's memory."""
    import shlex
    import subprocess

    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(shlex.split(command))
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = peak_single = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        rss, pss = [], []
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                info = p.memory_full_info()  # reads smaps_rollup: PSS where the OS has it
                rss.append(info.rss)
                pss.append(getattr(info, "pss", 0))
        peak_rss = max(peak_rss, sum(rss))
        peak_pss = max(peak_pss, sum(pss))
        peak_single = max(peak_single, max(rss, default=0))
        time.sleep(interval)
    code = proc.wait()
    seconds = time.perf_counter() - start
    print(f"`{command}` exited {code} after {seconds:.0f} s ({seconds / 60:.1f} min)")
    pss_note = f"{peak_pss / 2**30:.2f} GiB proportional (PSS), " if peak_pss else ""
    print(
        f"  peak memory of the process tree: {pss_note}{peak_rss / 2**30:.2f} GiB summed "
        f"resident; {peak_single / 2**30:.2f} GiB in one process (sampled every {interval} s)"
    )
    return code
