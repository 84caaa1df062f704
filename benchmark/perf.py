"""`python -m benchmark perf {objectives,train,pipeline,gate,drill}`: speed, memory, gate and
kill-drill figures.

Timings are medians of repeated runs on this machine, with ratios to a reference
measured in the same run, so that a noisy shared machine shifts both sides alike.
Peak memory is the process's resident high-water mark (Linux VmHWM, reset before each
measurement through /proc/self/clear_refs): large CPU tensors are mmap-ed and returned
on free, so the mark follows what a measurement allocates. On a GPU, torch.cuda's peak
allocator statistics are used instead.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="<benchmark>", required=True)
    threads = dict(
        type=int,
        default=None,
        help="torch CPU threads (default: torch's, one per core); 1 gives a figure that "
        "another busy core does not disturb",
    )
    p = sub.add_parser("objectives", help="time and memory of every loss vs ntxent")
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[256, 1024, 4096],
        help="instances per batch (two views each)",
    )
    p.add_argument("--dim", type=int, default=128, help="embedding dimension")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (median)")
    p.add_argument("--threads", **threads)
    p = sub.add_parser("train", help="a SimCLR step's views/s and model-FLOP utilisation")
    p.add_argument("--steps", type=int, default=30, help="timed training steps")
    p.add_argument("--threads", **threads)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--encoder", default="cnn2d", help="e.g. resnet18 (with --image-size 32)")
    p.add_argument("--image-size", type=int, default=None, help="random 3xNxN images, not digits")
    p.add_argument("--batch-size", type=int, default=256)
    for flag, what in (
        ("bf16", "bf16 autocast, losses in fp32"),
        ("channels-last", "channels_last memory format"),
        ("compile", "torch.compile the encoder"),
    ):
        p.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"{what} (default: on with CUDA except compile, off on CPU)")  # fmt: skip
    p = sub.add_parser("pipeline", help="wall time and peak memory of a command")
    p.add_argument(
        "--command",
        dest="measured",
        default="dvc repro",
        help="the command to run and measure (default `dvc repro`; e.g. "
        "'dvc exp run -S suite=smoke')",
    )
    p = sub.add_parser(
        "gate",
        help="the regression gate's false-alarm rate and power, simulated from the committed "
        "seed spreads (`perf gate --help` for its options)",
        add_help=False,
        prefix_chars="+",  # every argument, options included, goes to benchmark.gate_perf
    )
    p.add_argument("gate_args", nargs="*", help=argparse.SUPPRESS)
    p = sub.add_parser(
        "drill",
        help="kill drills: `dvc repro` of a suite killed with SIGKILL at seeded moments and "
        "resumed, compared with an uninterrupted run (benchmark/drill.py)",
    )
    from benchmark import drill

    drill.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.what == "gate":
        from benchmark import gate_perf

        return int(gate_perf.main(args.gate_args) or 0)
    if args.what == "drill":
        from benchmark import drill

        return drill.main(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.what == "objectives":
        perf_objectives(args.batch_sizes, args.dim, args.repeats)
    elif args.what == "pipeline":
        return perf_pipeline(args.measured)
    else:
        perf_train(args.steps, **_train_options(args))
    return 0


def _train_options(args: argparse.Namespace) -> dict:
    """The device and the speed path: on CUDA bf16 and channels_last default on."""
    from benchmark.errors import UserError

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device on this machine; allowed: auto, cpu")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    flags = {"bf16": cuda, "channels_last": cuda, "compile": False}
    flags = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in flags.items()}
    sizes = dict(encoder=args.encoder, image_size=args.image_size, batch_size=args.batch_size)
    return {"device": device, **flags, **sizes}


# --- measurement helpers ---------------------------------------------------------------


def _status_mib(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024


def measure(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, float]:
    """(median seconds, peak MiB above the level before the call) of ``fn``."""
    fn()  # warm-up: allocator pools, lazy init
    times = [_seconds(fn, device) for _ in range(repeats)]
    return statistics.median(times), _peak_mib(fn, device)


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _peak_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak MiB that one call of ``fn`` allocates above the level before it (on the CPU,
    exact for tensors only after :func:`_return_freed_memory`)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_mib("VmRSS")
        fn()
        peak = _status_mib("VmHWM") - base
    return max(peak, 0.0)


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


@functools.cache
def _return_freed_memory() -> None:
    """Pin glibc's mmap threshold at 128 KiB, so that every tensor of that size or more gets
    its own mapping, returned to the system when freed.

    By default glibc raises the threshold (up to 32 MiB) each time a mapped block is freed;
    after that, tensors are carved from the heap, their pages stay resident when freed, and
    the next measurement reuses them without raising VmHWM (peaks of 0 MiB, or peaks that
    depend on what ran before). Process-wide: call it before any timing that is compared.
    """
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc: the resident-set mark is approximate
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- objectives --------------------------------------------------------------------------


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


# --- training ----------------------------------------------------------------------------


def matmul_peak_flops(device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Measured FLOP/s of a plain fp32 n x n matrix multiply on this machine."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t, _ = measure(lambda: a @ b, repeats, device)
    return 2 * n**3 / t


def perf_train(
    steps: int,
    device: torch.device | None = None,
    *,
    bf16: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    encoder: str = "cnn2d",
    image_size: int | None = None,
    batch_size: int = 256,
) -> dict:
    """A SimCLR step. The data live on the device and are augmented there in one batched
    call; with ``bf16`` the encoder and projector run under autocast and the loss in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.datasets import PreparedData, prepare_dataset
    from benchmark.methods.base import instance_labels
    from benchmark.train import CellConfig, build_method, default_device, seed_everything

    device = device or default_device()
    dataset = "digits" if image_size is None else f"random {image_size}x{image_size}"
    cfg = CellConfig(method="simclr", objective="ntxent", encoder=encoder, batch_size=batch_size)
    if image_size is None:
        data = prepare_dataset("digits", cache_dir="data/cache")
    else:
        n = 4 * batch_size
        split = torch.arange(n)
        x = torch.rand(n, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        data = PreparedData("random", "image", x, torch.zeros(n, dtype=torch.long),
                            {"train": split, "val": split, "test": split}, meta={"num_classes": 2})  # fmt: skip
    seed_everything(0)
    method = build_method(cfg, data, device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    method = method.to(memory_format=memory)
    net = torch.nn.Sequential(method.encoder, method.projector)
    net = torch.compile(net) if compile else net
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3)
    train_idx = data.splits["train"].to(device)
    x = data.x.pin_memory() if device.type == "cuda" else data.x
    x = x.to(device, non_blocking=True)  # resident on the device
    labels = instance_labels(batch_size, 2, device)

    def step(i: int) -> None:
        rows = train_idx[torch.randint(len(train_idx), (batch_size,), device=device)]
        xb = x[rows]
        views = torch.cat([method.augment(xb), method.augment(xb)])
        views = views.contiguous(memory_format=memory)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z = net(views)
        loss = method.objective(z.float(), labels)  # the loss in fp32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step(0)
    flops_per_step = counter.get_total_flops()
    for i in range(3):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    seconds = (time.perf_counter() - t0) / steps

    # the augmentation alone, to show what data handling costs
    from benchmark.datasets import make_augment

    aug = make_augment(data).to(device)
    xb = x[:batch_size]
    aug_t, _ = measure(lambda: (aug(xb, None), aug(xb, None)), 10, device)

    baseline = _torchvision_step_seconds(data, aug, net, method, opt, labels, steps, batch_size,
                                         memory, bf16, device)  # fmt: skip
    peak = matmul_peak_flops(device)
    achieved = flops_per_step / seconds
    out = {
        "views_per_second": 2 * batch_size / seconds,
        "step_ms": seconds * 1e3,
        "augment_ms": aug_t * 1e3,
        "flops_per_step": flops_per_step,
        "achieved_gflops": achieved / 1e9,
        "matmul_peak_gflops": peak / 1e9,
        "mfu": achieved / peak,
        "torchvision_views_per_second": 2 * batch_size / baseline,
        "speedup_vs_torchvision": baseline / seconds,
    }
    path = [k for k, on in (("bf16", bf16), ("channels_last", channels_last),
                            ("compile", compile)) if on] or ["fp32"]  # fmt: skip
    print(
        f"simclr + ntxent on {dataset}, {encoder}, batch {batch_size} (2 views), "
        f"device={device}, {'+'.join(path)}, torch threads={torch.get_num_threads()}"
    )
    print(
        f"  step time            {out['step_ms']:.1f} ms  (augmentation of both views "
        f"{out['augment_ms']:.1f} ms)"
    )
    print(f"  views / second       {out['views_per_second']:.0f}")
    print(f"  FLOPs / step         {flops_per_step / 1e9:.3f} GFLOP (forward + backward)")
    print(f"  achieved             {out['achieved_gflops']:.1f} GFLOP/s")
    print(f"  fp32 matmul peak     {out['matmul_peak_gflops']:.1f} GFLOP/s (1024^3, same run)")
    print(f"  model-FLOP util.     {out['mfu'] * 100:.0f}% of the matmul peak")
    print(
        f"  same job, torchvision per-sample transforms + DataLoader: "
        f"{out['torchvision_views_per_second']:.0f} views/s; ours "
        f"{out['speedup_vs_torchvision']:.2f}x faster"
    )
    return out


def _torchvision_step_seconds(
    data, aug, net, method, opt, labels, steps, batch_size, memory, bf16, device
) -> float:
    """Seconds per step of the same SimCLR step fed the standard way: a Dataset applying
    torchvision.transforms.v2 to one sample at a time (the same crop scale, aspect range,
    affine, flip and noise as ``aug``), batched by a DataLoader (shuffled, main process,
    as on a 2-core machine), copied to the device per batch. Same encoder, loss, batch."""
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import v2

    _, height, width = data.x.shape[1:]
    ops = [
        v2.RandomResizedCrop((height, width), scale=(aug.crop_low, 1.0), ratio=(3 / 4, 4 / 3)),
        v2.RandomAffine(degrees=aug.degrees, translate=(aug.translate, aug.translate)),
    ]
    if aug.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if aug.color:
        ops += [v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                v2.RandomGrayscale(p=0.2)]  # fmt: skip
    if aug.noise_std > 0:
        ops.append(v2.GaussianNoise(sigma=aug.noise_std, clip=True))
    transform = v2.Compose(ops)
    images = data.x[data.splits["train"]]

    class TwoViews(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return transform(images[i]), transform(images[i])

    loader = DataLoader(TwoViews(), batch_size=batch_size, shuffle=True, drop_last=True,
                        pin_memory=device.type == "cuda")  # fmt: skip

    def batches():
        while True:
            yield from loader

    source = batches()

    def step() -> None:
        a, b = next(source)
        views = torch.cat([a, b]).to(device, non_blocking=True).contiguous(memory_format=memory)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z = net(views)
        loss = method.objective(z.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


# --- the whole pipeline ------------------------------------------------------------------


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
