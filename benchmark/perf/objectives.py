"""`perf objectives`: forward+backward time and peak memory of every objective, as
ratios to ntxent measured in the same run."""

from __future__ import annotations

import statistics

import torch

from benchmark.perf.measure import _peak_mib, _return_freed_memory, _seconds


def perf_objectives(batch_sizes: list[int], dim: int, repeats: int) -> list[dict]:
    from benchmark.objectives import OBJECTIVES, build_objective

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        _return_freed_memory()  # before any timing: one allocator policy for all
    rows = []
    print(
        f"forward+backward, two views per instance, d={dim}, device={device}, "
        f"torch threads={torch.get_num_threads()}, median of {repeats}"
    )
    header = (
        f"{'objective':<12}{'B':>6}{'ms':>10}{'peak MiB':>10}{'time/ntxent':>13}{'mem/ntxent':>12}"
    )
    print(header)
    print("-" * len(header))
    for b in batch_sizes:
        gen = torch.Generator().manual_seed(0)
        emb = torch.randn(2 * b, dim, generator=gen).to(device)
        labels = torch.arange(b, device=device).repeat(2)
        names = ["ntxent"] + [n for n in OBJECTIVES.names() if n != "ntxent"]
        steps = {}
        for name in names:
            objective = build_objective(name)

            def step(objective=objective, emb=emb, labels=labels):
                x = emb.detach().requires_grad_(True)
                objective(x, labels).backward()

            steps[name] = step
        # round-robin repetitions: a burst of load from other processes slows every
        # objective alike instead of the one that happens to be measured during it
        times: dict[str, list[float]] = {name: [] for name in names}
        for step in steps.values():
            step()  # warm-up: allocator pools, lazy init
        for _ in range(repeats):
            for name, step in steps.items():
                times[name].append(_seconds(step, device))
        results = {
            name: (statistics.median(times[name]), _peak_mib(step, device))
            for name, step in steps.items()
        }
        ref_t, ref_m = results["ntxent"]
        for name, (t, m) in results.items():
            row = {
                "objective": name,
                "batch_size": b,
                "ms": t * 1e3,
                "peak_mib": m,
                "time_ratio": t / ref_t,
                "mem_ratio": m / ref_m if ref_m else float("nan"),
            }
            rows.append(row)
            print(
                f"{name:<12}{b:>6}{t * 1e3:>10.1f}{m:>10.1f}{row['time_ratio']:>13.2f}"
                f"{row['mem_ratio']:>12.2f}"
            )
        print()
    return rows
