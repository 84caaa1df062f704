"""`perf train`: a SimCLR step's views/s and model-FLOP utilisation, against the
per-sample torchvision transforms and DataLoader it replaces."""

from __future__ import annotations

import time

import torch

from benchmark.perf.measure import _sync, measure


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
