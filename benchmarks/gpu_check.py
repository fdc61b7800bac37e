"""GPU check: the CUDA paths and one main-job-sized run on one GPU. Prints its figures; exits non-zero on a FAIL.

1. samplers on CUDA with the exact ε of Gaussian data (x0 ~ N(μ, σ²) per dimension, so E[x0 | x_t] is known in closed
   form): every sampler's samples come back with the data's mean and spread (the property `06_sampling` tests on the
   CPU), on the GPU in float32;
2. the main job (`specdm.train.run_job`) at its default size on the built-in scenes, with `--precision` (default bf16)
   and with fp32: wall time of each stage, steps/s, final losses, and what the checkpoints record;
3. sampling from the trained checkpoint on the GPU: pairs/s with decoding for DDIM-50 (η = 1) and DPM-Solver++-20,
   every value finite, and the sampled class shares against the real training split's.

Mixed precision's own check (what runs and what is recorded for no / fp16 / bf16) is `benchmarks/mixed_precision.py`.

    python benchmarks/gpu_check.py [--out /tmp/gpu_check] [--precision bf16] [--n 512]
"""
import argparse, json, math, os, sys, time
from pathlib import Path

def gaussian_eps_check(device) -> bool:
    "Step 1: exact-ε sampling of N(μ, σ²) data on `device`; PASS when the mean is within 0.05 and the std within 8 %."
    import torch
    from specdm.ddpm import GaussianDiffusion, make_betas
    from specdm.sampling import make_sampler
    dif = GaussianDiffusion(make_betas("linear")); ab = dif.alphas_cumprod.double().to(device)
    mu = torch.tensor([0.3, -0.2], dtype=torch.float64, device=device).view(1, 2, 1, 1)
    sd = torch.tensor([1.0, 0.5], dtype=torch.float64, device=device).view(1, 2, 1, 1)
    def eps(x, t): # E[eps | x_t] for x0 ~ N(mu, sd^2): x_t ~ N(sqrt(ab) mu, ab sd^2 + 1 - ab)
        a = ab[t].view(-1, 1, 1, 1); x = x.double()
        x0 = mu + a.sqrt() * sd**2 / (a * sd**2 + 1 - a) * (x - a.sqrt() * mu)
        return ((x - a.sqrt() * x0) / (1 - a).sqrt()).float()
    ok = True
    for name, steps, eta in (("ddpm", 1000, 0.0), ("ddim", 50, 0.0), ("dpmpp2m", 20, 0.0)):
        s = make_sampler(name, dif, eta); ts = s.set_timesteps(steps) # the schedule stays float64 on the CPU, as in `denoise`
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(4000, 2, 1, 1, device=device, generator=g)
        for i in range(len(ts)):
            t = torch.full((x.shape[0],), int(ts[i]), device=device)
            noise = torch.randn(x.shape, device=device, generator=g) if s.needs_noise(i) else None
            x = s.step(eps(x, t), i, x, noise).prev_sample
        m, r = x.double().mean((0, 2, 3)) - mu.view(2), x.double().std((0, 2, 3)) / sd.view(2)
        good = bool((m.abs() < 0.05).all() and ((r - 1).abs() < 0.08).all()); ok &= good
        print(f"[1] {name}-{steps} on {x.device}: mean error {m.tolist()}, std ratio {[round(v, 3) for v in r.tolist()]} -> {'PASS' if good else 'FAIL'}")
    return ok

def stage_summary(run:Path, stage:str) -> str:
    "Steps, the last logged loss and the recorded precision of one stage's run folder."
    from specdm.core import load_checkpoint, read_log, resolve_checkpoint
    log = [r for r in read_log(run/stage) if "loss" in r]
    cfg, _ = load_checkpoint(resolve_checkpoint(run/stage))
    return (f"{stage}: {log[-1].get('step')} steps, last loss {log[-1]['loss']:.4f}, records mixed_precision="
            f"{cfg['train'].get('mixed_precision')!r} {cfg.get('precision', '')}")

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/gpu_check"); p.add_argument("--precision", default="bf16")
    p.add_argument("--n", type=int, default=512); p.add_argument("--skip_fp32", action="store_true")
    a = p.parse_args()
    import numpy as np, torch
    from specdm.data import PreparedDataset
    from specdm.sampling import NonFiniteError, load_ldm, sample_pairs
    from specdm.train import JobConfig, run_job
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, "
          f"{torch.get_num_threads()} CPU threads, load {os.getloadavg()[0]:.1f}")
    ok = gaussian_eps_check(dev)
    runs = [a.precision] + ([] if a.skip_fp32 or a.precision == "no" else ["no"])
    for prec in runs:
        run = Path(a.out)/f"main_{prec}"; t0 = time.time()
        res = run_job(JobConfig(run_dir=str(run), mixed_precision=prec, resume=False))
        dt = time.time() - t0
        print(f"[2] main job, default size, mixed_precision={prec!r}: {dt:.0f} s in all")
        for stage in ("vae", "ldm"): print("    " + stage_summary(run, stage))
    ds = PreparedDataset(res.data); real = np.array(ds.meta["class_pixels"]["train"], float); real /= real.sum()
    m = load_ldm(res.ldm, dev)
    for sampler, steps, eta in (("ddim", 50, 1.0), ("dpmpp2m", 20, 0.0)):
        sample_pairs(m, 8, sampler=sampler, steps=steps, eta=eta, batch_size=8, device=dev) # warm-up
        if dev.type == "cuda": torch.cuda.synchronize()
        t0 = time.time()
        try: pairs = sample_pairs(m, a.n, sampler=sampler, steps=steps, eta=eta, batch_size=128, seed=1, device=dev)
        except NonFiniteError as e: print(f"[3] {sampler}-{steps}: FAIL {e}"); ok = False; continue
        if dev.type == "cuda": torch.cuda.synchronize()
        dt = time.time() - t0; finite = bool(torch.isfinite(pairs.images).all())
        share = np.bincount(pairs.masks.ravel().numpy(), minlength=len(real))[:len(real)].astype(float); share /= share.sum()
        gap = float(np.abs(share - real).max()) * 100; ok &= finite
        print(f"[3] {sampler}-{steps} (eta {eta}) from the {runs[-1]!r} run: {a.n / dt:.0f} pairs/s with decoding, finite: {finite}, "
              f"largest class-share gap to the real train split {gap:.1f} points")
    print("all PASS" if ok else "FAIL"); sys.exit(0 if ok else 1)

if __name__ == "__main__": main()
