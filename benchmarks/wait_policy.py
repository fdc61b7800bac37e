"""What OpenMP's waiting policy costs one training alone: stage-1 and stage-2 steps with threads that sleep, spin briefly, or spin.

    python benchmarks/wait_policy.py [--steps 25] [--warmup 5] [--models s1cur s2cur s1old s2old] [--settings passive spin=3000 active] [--out FILE]

Each (model, setting) runs in a fresh process (OpenMP reads the policy once, when torch loads), one after the other,
alone: `--steps` training steps (forward, backward, fused AdamW) in the memory layout `specdm.core.conv_layout` picks
here, threads from `specdm.core.set_threads`. Models: the main job's stage-1 VAE on its 16 × 32-px crops (`s1cur`:
today's ch_mult 1,2; `s1old`: the earlier 1,2,2) and stage-2 U-Net on a batch of 32 latents (`s2cur`: 32 × (1,2,2,2),
32 × 32 latent, v with min-SNR-5; `s2old`: 48 × (1,2,2), 16 × 16, ε). Settings: `passive` (OMP_WAIT_POLICY=PASSIVE:
sleep at once), `spin=K` (PASSIVE with GOMP_SPINCOUNT=K: spin K rounds, then sleep; specdm's default is K = 3000),
`active` (OMP_WAIT_POLICY=ACTIVE: spin). Printed: the median step time (after `--warmup` steps) per model and setting,
and each setting's ratio to `active`, and with `--out` written to a JSON file (rendered in nbs/00_core.ipynb, "Threads
on a shared machine"). Two jobs sharing the cores: `benchmarks/shared_cpu.py`.
"""
import argparse, os, statistics, subprocess, sys, time

def worker(model:str, steps:int, warmup:int):
    import specdm # noqa: F401  (the waiting policy, before torch loads)
    import torch
    from specdm.core import adamw, conv_layout, set_threads
    from specdm.ddpm import DiffusionConfig, GaussianDiffusion, UNet, UNetConfig
    from specdm.vae import AEConfig, VAEConfig, build_vae
    set_threads(); torch.manual_seed(0); g = torch.Generator().manual_seed(0)
    if model.startswith("s1"):
        m = build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=32, ch_mult=(1, 2, 2) if model == "s1old" else (1, 2),
                                                                              num_res_blocks=1, z_channels=4))).train()
        x = torch.rand(16, 10, 32, 32, generator=g) * 2 - 1; y = torch.randint(0, 7, (16, 32, 32), generator=g)
        loss = lambda: m(x, y, sample_posterior=True).loss
    else:
        old = model == "s2old"; hw = 16 if old else 32
        m = UNet(UNetConfig(in_channels=8, model_channels=48 if old else 32, channel_mult=(1, 2, 2) if old else (1, 2, 2, 2),
                            num_res_blocks=1, attention_resolutions=(4,) if old else (8,))).train()
        d = GaussianDiffusion.from_config(DiffusionConfig(parameterization="eps" if old else "v"))
        z = torch.randn(32, 8, hw, hw, generator=g); t = torch.randint(0, 1000, (32,), generator=g); n = torch.randn(z.shape, generator=g)
        loss = lambda: d.training_loss(m, z, t, n, snr_gamma=None if old else 5.0)
    conv_layout(m); opt = adamw(m.parameters(), lr=1e-4); ts = []
    for _ in range(steps):
        t0 = time.perf_counter(); opt.zero_grad(set_to_none=True); loss().backward(); opt.step(); ts.append(time.perf_counter() - t0)
    print(statistics.median(ts[warmup:]), torch.get_num_threads())

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--steps", type=int, default=25, help="training steps per process")
    ap.add_argument("--warmup", type=int, default=5, help="first steps not counted")
    ap.add_argument("--models", nargs="+", default=["s1cur", "s2cur", "s1old", "s2old"], choices=["s1cur", "s2cur", "s1old", "s2old"])
    ap.add_argument("--settings", nargs="+", default=["passive", "spin=3000", "active"], help="passive, spin=K, active")
    ap.add_argument("--out", default=None, help="write the medians and ratios to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.steps, a.warmup)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _timing import cpu_units, load, write_result
    start = load(); print(f"one training alone per process, {a.steps} steps ({a.warmup} not counted)\nCPU: {cpu_units()}\nat the start: {start}")
    res, threads = {}, 0
    for model in a.models:
        for s in a.settings:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
            env["OMP_WAIT_POLICY"] = "ACTIVE" if s == "active" else "PASSIVE"
            if s.startswith("spin="): env["GOMP_SPINCOUNT"] = s[5:]
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", model, "--steps", str(a.steps), "--warmup", str(a.warmup)],
                                 env=env, capture_output=True, text=True, check=True).stdout.split()
            res[model, s] = float(out[0]); threads = int(out[1])
            print(f"  {model:<6} {s:<10} {int(out[1])} threads: median {1e3 * res[model, s]:7.1f} ms per step", flush=True)
    if "active" in a.settings:
        for s in a.settings:
            r = [res[m, s] / res[m, "active"] for m in a.models]
            print(f"{s:<10}: step time {min(r):.2f}-{max(r):.2f}x that of spinning threads (active)")
    print(f"at the end: {load()}")
    if a.out:
        rec = dict(command="python benchmarks/wait_policy.py " + " ".join(sys.argv[1:]), cpu=cpu_units(), threads=threads, steps=a.steps, warmup=a.warmup,
                   load_start=start, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"),
                   seconds={m: {s: res[m, s] for s in a.settings} for m in a.models})
        if "active" in a.settings: rec["vs_active"] = {s: [res[m, s] / res[m, "active"] for m in a.models] for s in a.settings}
        write_result(rec, a.out)

if __name__ == "__main__":
    main()
