"""U-Net speed benchmark (CPU): prints its figures.

(a) training throughput — samples/s of forward + backward + AdamW step on a fixed batch — of `specdm.ddpm.UNet`
    against diffusers' `UNet2DModel` configured to the same widths, depth, attention levels and head width, as a ratio
    ours / diffusers, with both parameter counts (skipped with a message when diffusers is not installed);
(b) the FLOP rate of one U-Net forward pass (FLOPs counted with `torch.utils.flop_counter.FlopCounterMode`) as a fraction
    of the FLOP rate of a large float32 `torch.mm` on the same machine.

Defaults: a change-detection joint latent (12 channels = 3 x 4, f = 4 on 128 px patches -> 32 x 32), batch 8,
model_channels 64, channel_mult (1, 2, 2), 2 residual blocks per level, attention at ds = 2 and in the middle, 32 channels
per head. The architectures match op for op (same FLOPs) except one quirk of diffusers: with
`resnet_time_scale_shift="scale_shift"` its middle attention block has no GroupNorm (256 fewer parameters).
Everything timed is run in alternating rounds (ours, diffusers, matmul, ...) so that a change in machine load affects all
alike; figures are medians over the timed iterations, with the ratio from the best times in parentheses. The FLOP
fraction can exceed 1: convolutions run in oneDNN's kernels for the widest vector unit torch found ("torch kernels" in
the header: AVX512 or AVX2), while `torch.mm` calls the BLAS (MKL in the PyPI wheels), whose code path MKL picks by CPU
vendor and may be narrower (AVX2 on AMD CPUs, whatever their vector units); the rate of one large 3x3 convolution is
printed as a second reference. The header lists the CPU's vector units as /proc/cpuinfo gives them.

    python benchmarks/unet_speed.py [--batch 8] [--channels 12] [--size 32] [--iters 10] [--threads N]

Threads: specdm's policy by default (the usable cores; the waiting policy from `import specdm`: PASSIVE with GOMP_SPINCOUNT=3000). On a machine
shared with other jobs the figures vary with the load printed at the start and end; `--threads 1` gives steadier ones.
"""
import argparse, os, re, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import specdm # noqa: F401  (before torch: waiting OpenMP threads sleep)
import torch
from _timing import footer, header
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from specdm.ddpm import UNet, UNetConfig

def ints(s:str) -> tuple[int, ...]: return tuple(int(v) for v in s.split(",") if v)

def diffusers_unet(cfg:UNetConfig, size:int):
    "diffusers' UNet2DModel with the same widths, depth, attention levels and head width as `cfg`, or None."
    try: from diffusers import UNet2DModel
    except ImportError as e:
        print(f"[a] skipped: diffusers is not importable ({e}); install it with `pip install diffusers`"); return None
    levels = range(len(cfg.channel_mult))
    attn = [2 ** i in cfg.attention_resolutions for i in levels]
    return UNet2DModel(sample_size=size, in_channels=cfg.in_channels, out_channels=cfg.out_channels,
                       block_out_channels=tuple(cfg.model_channels * m for m in cfg.channel_mult),
                       layers_per_block=cfg.num_res_blocks,
                       down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
                       up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
                       attention_head_dim=cfg.num_head_channels, norm_num_groups=32, dropout=cfg.dropout,
                       resnet_time_scale_shift="scale_shift" if cfg.use_scale_shift_norm else "default",
                       downsample_type="conv", upsample_type="conv", add_attention=True)

def train_step_fn(model, x, t, target, unwrap=False):
    "One closure running forward + backward + AdamW step of `model` on the fixed batch."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    def step():
        out = model(x, t); out = out.sample if unwrap else out
        loss = torch.nn.functional.mse_loss(out, target); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def timed(fn) -> float:
    "Wall time of one call, seconds."
    t = time.perf_counter(); fn(); return time.perf_counter() - t

def bench(fns:dict, warmup:int, iters:int) -> dict:
    "Per-call times of each function, measured in alternating rounds after `warmup` untimed rounds."
    for _ in range(warmup):
        for f in fns.values(): f()
    times = {k: [] for k in fns}
    for _ in range(iters):
        for k, f in fns.items(): times[k].append(timed(f))
    return times

def med_best(ts:list) -> str: return f"median {statistics.median(ts) * 1e3:.0f} ms, best {min(ts) * 1e3:.0f} ms"

def n_params(m) -> int: return sum(p.numel() for p in m.parameters())

# FlopCounterMode has formulas for the CUDA attention kernels but not for the fused CPU one that
# `scaled_dot_product_attention` dispatches to here; count it with the same formula (q k^T and p v).
CPU_SDPA = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu:
            lambda q, k, v, *args, out_shape=None, **kwargs: sdpa_flop_count(q, k, v)}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=12, help="latent channels")
    ap.add_argument("--size", type=int, default=32, help="latent height = width")
    ap.add_argument("--model-channels", type=int, default=64)
    ap.add_argument("--channel-mult", type=ints, default=(1, 2, 2))
    ap.add_argument("--num-res-blocks", type=int, default=2)
    ap.add_argument("--attention", type=ints, default=(2,), help="downsampling factors with attention, e.g. 2 or 2,4")
    ap.add_argument("--head-channels", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--mm", type=int, default=2048, help="size of the square float32 matmul used as the reference")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: specdm's policy, the usable cores / local processes)")
    a = ap.parse_args()
    from specdm.core import set_threads
    set_threads(a.threads); torch.manual_seed(0)
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(header(torch, "U-Net speed") + f"\nBLAS {blas.group(1) if blas else '?'}")
    cfg = UNetConfig(in_channels=a.channels, model_channels=a.model_channels, channel_mult=a.channel_mult,
                     num_res_blocks=a.num_res_blocks, attention_resolutions=a.attention, num_head_channels=a.head_channels)
    print(f"config: {cfg}\ninput: batch {a.batch} x {a.channels} x {a.size} x {a.size}")
    x = torch.randn(a.batch, a.channels, a.size, a.size); t = torch.randint(0, 1000, (a.batch,)); target = torch.randn_like(x)
    ours = UNet(cfg)
    theirs = diffusers_unet(cfg, a.size)

    # (a) training throughput
    if theirs is not None:
        assert theirs(x, t).sample.shape == ours(x, t).shape == x.shape
        times = bench({"specdm UNet": train_step_fn(ours, x, t, target),
                       "diffusers UNet2DModel": train_step_fn(theirs, x, t, target, unwrap=True)}, a.warmup, a.iters)
        sps = {k: a.batch / statistics.median(v) for k, v in times.items()}
        for (k, v), m in zip(sps.items(), (ours, theirs)):
            print(f"[a] {k:>22}: {n_params(m):,} parameters, {v:5.2f} training samples/s ({med_best(times[k])} per step)")
        best = {k: min(v) for k, v in times.items()}
        print(f"[a] training throughput ratio ours / diffusers: {sps['specdm UNet'] / sps['diffusers UNet2DModel']:.2f} "
              f"(from best times: {best['diffusers UNet2DModel'] / best['specdm UNet']:.2f})")

    # (b) forward FLOP rate against a large matmul
    models = {"specdm UNet": ours} | ({"diffusers UNet2DModel": theirs} if theirs is not None else {})
    A, B = torch.randn(a.mm, a.mm), torch.randn(a.mm, a.mm)
    conv, xc = torch.nn.Conv2d(128, 128, 3, padding=1), torch.randn(a.batch, 128, a.size, a.size)
    conv_flops = 2 * a.batch * 128 * 128 * 9 * a.size ** 2
    flops, ops = {}, {}
    with torch.no_grad():
        for k, m in models.items():
            with FlopCounterMode(display=False, custom_mapping=CPU_SDPA) as fc: m(x, t)
            flops[k] = fc.get_total_flops()
            ops[k] = {str(op).split(".")[-1].replace("_scaled_dot_product_flash_attention_for_cpu", "attention"): v
                      for op, v in fc.get_flop_counts()["Global"].items()}
        fns = {"mm": lambda: torch.mm(A, B), "conv": lambda: conv(xc)} | {k: (lambda m=m: m(x, t)) for k, m in models.items()}
        times = bench(fns, a.warmup, a.iters)
    rate = lambda k, agg: {"mm": 2 * a.mm ** 3, "conv": conv_flops}.get(k, flops.get(k)) / agg(times[k])
    print(f"[b] torch.mm {a.mm}x{a.mm} float32: {rate('mm', statistics.median) / 1e9:.1f} GFLOP/s "
          f"(best {rate('mm', min) / 1e9:.1f}); for reference, one 128->128 3x3 conv on {a.batch}x128x{a.size}x{a.size}: "
          f"{rate('conv', statistics.median) / 1e9:.1f} GFLOP/s (best {rate('conv', min) / 1e9:.1f})")
    for k in models:
        shares = ", ".join(f"{op} {v / flops[k]:.0%}" for op, v in sorted(ops[k].items(), key=lambda kv: -kv[1]))
        print(f"[b] {k:>22}: forward {flops[k] / 1e9:.2f} GFLOP per batch of {a.batch} ({shares}), "
              f"{rate(k, statistics.median) / 1e9:.1f} GFLOP/s = {rate(k, statistics.median) / rate('mm', statistics.median):.2f} "
              f"of the matmul rate (from best times: {rate(k, min) / rate('mm', min):.2f})")

    print(footer())

if __name__ == "__main__":
    main()
