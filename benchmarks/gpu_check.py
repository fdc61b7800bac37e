"""GPU check: the CUDA paths and one main-job-sized run on one GPU. Prints its figures; exits non-zero on a FAIL.

1. samplers on CUDA with the exact ε of Gaussian data (x0 ~ N(μ, σ²) per dimension, so E[x0 | x_t] is known in closed
   form): every sampler's samples come back with the data's mean and spread (the property `06_sampling` tests on the
   CPU), on the GPU in float32;
2. the main job (`specdm.train.run_job`) at its default size on the built-in scenes, with `--precision` (default bf16)
   and with fp32: wall time of each stage, steps/s, final losses, and what the checkpoints record;
3. sampling from the trained checkpoint on the GPU: pairs/s with decoding for DDIM-50 (η = 1) and DPM-Solver++-20,
   every value finite, and the sampled class shares against the real training split's.

4. one larger run: the paper-size models of `configs/segmunich_gpu.yaml` (f = 4, U-Net 224 x (1, 2, 3, 4)) on built-in
   scenes at 128-px patches for --scale_steps steps per stage: steady steps/s of each stage, peak GPU memory, the hours
   that the config's full step counts would take at that rate, and DDIM-200 sampling pairs/s at that size.

--json writes every figure to a file (`results/gpu_check.json` renders in `05_train_ldm`), with the command and the date;
--mixed_precision_json adds the verdicts that `benchmarks/mixed_precision.py --json` wrote. --tiny runs the same steps
at a size of seconds (a smoke test on a CPU before a GPU session).

Mixed precision's own check (what runs and what is recorded for no / fp16 / bf16) is `benchmarks/mixed_precision.py`.

    python benchmarks/mixed_precision.py --json /tmp/mixed_precision.json
    python benchmarks/gpu_check.py [--out /tmp/gpu_check] [--precision bf16] [--n 512] [--scale_steps 300] [--skip_fp32] \\
        [--json results/gpu_check.json] [--mixed_precision_json /tmp/mixed_precision.json] [--tiny]
"""
import argparse, datetime, json, math, os, sys, time
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

def steady_rate(run:Path) -> float:
    "Optimizer steps per second between a stage's first and last logged training records (start-up excluded)."
    from specdm.core import read_log
    log = [r for r in read_log(run) if "time" in r]
    return (log[-1]["step"] - log[0]["step"]) / max(log[-1]["time"] - log[0]["time"], 1e-9) if len(log) > 1 else float("nan")

def scale_check(out:Path, steps:int, precision:str, dev, tiny:bool) -> dict:
    "Step 4: the paper-size models on built-in 128-px patches for `steps` per stage; rates, peak memory, sampling speed."
    import torch, yaml
    from specdm.sampling import load_ldm, sample_pairs
    from specdm.train import JobConfig, run_job
    p = yaml.safe_load((Path(__file__).parents[1]/"configs/segmunich_gpu.yaml").read_text())
    full = dict(vae=p["vae_steps"], ldm=p["ldm_steps"]); p.pop("data_dir")
    p.update(run_dir=str(out/"scale"), resume=False, vae_steps=steps, ldm_steps=steps, checkpoint_every=steps,
             warmup_steps=min(p["warmup_steps"], steps // 2), mixed_precision=precision, n_scenes=16, scene_size=256)
    if tiny: p.update(n_scenes=2, vae_ch=16, unet_channels=16, vae_batch_size=2, ldm_batch_size=2)
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
    t0 = time.time(); res = run_job(JobConfig.from_params(p)); wall = time.time() - t0
    rate = {s: steady_rate(out/"scale"/s) for s in ("vae", "ldm")}
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None # GPU memory only
    m = load_ldm(res.ldm, dev); n = 4 if tiny else 64; ss = 5 if tiny else p["sample_steps"]
    sample_pairs(m, 2, sampler="ddim", steps=2, batch_size=2, device=dev) # warm-up
    if dev.type == "cuda": torch.cuda.synchronize()
    t1 = time.time(); pairs = sample_pairs(m, n, sampler="ddim", steps=ss, eta=1.0, batch_size=n, seed=1, device=dev)
    if dev.type == "cuda": torch.cuda.synchronize()
    ps = n / (time.time() - t1)
    hours = sum(full[s] / rate[s] for s in full) / 3600
    r = dict(config="configs/segmunich_gpu.yaml", precision=precision, patch_size=p["patch_size"], steps_per_stage=steps, wall_s=round(wall, 1),
             vae_steps_per_s=round(rate["vae"], 2), ldm_steps_per_s=round(rate["ldm"], 2), vae_batch=p["vae_batch_size"],
             ldm_batch=p["ldm_batch_size"], peak_gib=None if peak is None else round(peak, 2), full_config_hours=round(hours, 2),
             full_steps=full, sampler=f"ddim-{ss}", sample_pairs_per_s=round(ps, 2), finite=bool(torch.isfinite(pairs.images).all()))
    print(f"[4] paper size ({r['config']}, {p['patch_size']}-px, {precision}): stage 1 {r['vae_steps_per_s']} steps/s "
          f"(batch {r['vae_batch']}), stage 2 {r['ldm_steps_per_s']} steps/s (batch {r['ldm_batch']}), peak {'–' if peak is None else r['peak_gib']} GiB; "
          f"the config's {full['vae']} + {full['ldm']} steps would take {r['full_config_hours']} h at these rates; "
          f"DDIM-{ss}: {r['sample_pairs_per_s']} pairs/s with decoding, finite: {r['finite']}")
    return r

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="/tmp/gpu_check", help="folder for the runs (checkpoints, data); not kept by anything")
    p.add_argument("--precision", default="bf16", choices=["no", "fp16", "bf16"], help="mixed precision of the main job and the paper-size run")
    p.add_argument("--n", type=int, default=512, help="pairs sampled per sampler from the main job's model")
    p.add_argument("--skip_fp32", action="store_true", help="do not run the main job again in fp32 (precision 'no') at the end")
    p.add_argument("--scale_steps", type=int, default=300, help="steps per stage of the paper-size run (0: skip it)")
    p.add_argument("--json", default="", help="write the figures to this JSON file")
    p.add_argument("--mixed_precision_json", default="", help="a result file of benchmarks/mixed_precision.py --json, added to --json")
    p.add_argument("--tiny", action="store_true", help="the same steps at a size of seconds, on any device (a smoke test)")
    a = p.parse_args()
    import numpy as np, torch
    from specdm.data import PreparedDataset
    from specdm.sampling import NonFiniteError, load_ldm, sample_pairs
    from specdm.train import JobConfig, run_job
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rec = dict(torch=torch.__version__, device=torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
               cpu_threads=torch.get_num_threads(), load=round(os.getloadavg()[0], 1), main_job={}, sampling={},
               date=datetime.date.today().isoformat(), commands=["python " + " ".join(sys.argv)])
    if a.mixed_precision_json:
        rec["mixed_precision"] = json.loads(Path(a.mixed_precision_json).read_text())
        rec["commands"].insert(0, "python benchmarks/mixed_precision.py --json " + a.mixed_precision_json)
    def save(): # after every step, so that a run stopped at its time limit keeps what it measured
        if a.json: Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(rec, indent=1))
    print(f"torch {rec['torch']}, device {rec['device']}, {rec['cpu_threads']} CPU threads, load {rec['load']}")
    ok = rec["samplers_exact_eps"] = gaussian_eps_check(dev); save()
    size = dict(n_scenes=4, scene_size=64, patch_size=32, vae_steps=60, ldm_steps=60, warmup_steps=2, checkpoint_every=60) if a.tiny else {} # 60: two log records (every 25 steps) for a rate
    runs = [a.precision] + ([] if a.skip_fp32 or a.precision == "no" else ["no"])
    def main_job(prec):
        run = Path(a.out)/f"main_{prec}"; t0 = time.time()
        res = run_job(JobConfig(run_dir=str(run), mixed_precision=prec, resume=False, **size))
        dt = time.time() - t0
        c = JobConfig(**size)
        rec["main_job"][prec] = dict(wall_s=round(dt, 1), vae_steps_per_s=round(steady_rate(run/"vae"), 2), ldm_steps_per_s=round(steady_rate(run/"ldm"), 2),
                                     vae_batch=c.vae_batch_size, ldm_batch=c.ldm_batch_size)
        print(f"[2] main job, {'tiny' if a.tiny else 'default'} size, mixed_precision={prec!r}: {dt:.0f} s in all, "
              f"stage 1 {rec['main_job'][prec]['vae_steps_per_s']} steps/s, stage 2 {rec['main_job'][prec]['ldm_steps_per_s']} steps/s")
        for stage in ("vae", "ldm"): print("    " + stage_summary(run, stage))
        save(); return res
    res = main_job(runs[0])
    ds = PreparedDataset(res.data); real = np.array(ds.meta["class_pixels"]["train"], float); real /= real.sum()
    m = load_ldm(res.ldm, dev); n = 16 if a.tiny else a.n
    for sampler, steps, eta in (("ddim", 50, 1.0), ("dpmpp2m", 20, 0.0)):
        sample_pairs(m, 8, sampler=sampler, steps=steps, eta=eta, batch_size=8, device=dev) # warm-up
        if dev.type == "cuda": torch.cuda.synchronize()
        t0 = time.time()
        try: pairs = sample_pairs(m, n, sampler=sampler, steps=steps, eta=eta, batch_size=128, seed=1, device=dev)
        except NonFiniteError as e: print(f"[3] {sampler}-{steps}: FAIL {e}"); ok = False; continue
        if dev.type == "cuda": torch.cuda.synchronize()
        dt = time.time() - t0; finite = bool(torch.isfinite(pairs.images).all())
        share = np.bincount(pairs.masks.ravel().numpy(), minlength=len(real))[:len(real)].astype(float); share /= share.sum()
        gap = float(np.abs(share - real).max()) * 100; ok &= finite
        rec["sampling"][f"{sampler}-{steps}"] = dict(eta=eta, pairs=n, pairs_per_s=round(n / dt, 1), finite=finite, class_share_gap_points=round(gap, 1))
        print(f"[3] {sampler}-{steps} (eta {eta}) from the {runs[0]!r} run: {n / dt:.0f} pairs/s with decoding, finite: {finite}, "
              f"largest class-share gap to the real train split {gap:.1f} points"); save()
    if a.scale_steps: rec["paper_size"] = scale_check(Path(a.out), a.scale_steps, a.precision, dev, a.tiny); ok &= rec["paper_size"]["finite"]; save()
    for prec in runs[1:]: main_job(prec)
    rec["all_pass"] = bool(ok); save()
    print("all PASS" if ok else "FAIL"); sys.exit(0 if ok else 1)

if __name__ == "__main__": main()
