"""`perf pipeline`: a command's wall time and the peak resident memory of its process
tree (the warm server's included)."""

from __future__ import annotations

import contextlib
import time


def perf_pipeline(command: str, interval: float = 0.2) -> int:
    """Run ``command`` and print its wall time and the peak of the summed resident memory
    of its whole process tree (sampled every ``interval`` s: DVC, each stage, each worker,
    and the warm server with the stage processes it forks). Summing counts the pages that
    forked processes share once per process, so the figure errs on the high side."""
    import shlex
    import subprocess

    import psutil

    from benchmark import warm

    def warm_tree() -> list:
        # the warm server and the stage children it forks are not the command's
        # descendants (the server runs in its own session): counted explicitly
        try:
            server = psutil.Process(int(warm.paths()["pid"].read_text()))
            return [server, *server.children(recursive=True)]
        except (OSError, ValueError, psutil.NoSuchProcess):
            return []

    start = time.perf_counter()
    proc = subprocess.Popen(shlex.split(command))
    root = psutil.Process(proc.pid)
    peak_total = peak_single = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True), *warm_tree()]
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
