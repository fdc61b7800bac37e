"""Mixed precision in the main job: what runs, and what the checkpoints record (a GPU check; also runs on a CPU).

For each of --precisions (default no, fp16, bf16) a fresh process runs the main job (`specdm.train.run_job`) on tiny
built-in scenes, 20 steps per stage, with a forward hook on every convolution that collects the dtypes it computes in.
It prints, per precision: the device, what the VAE and the latent-diffusion checkpoints record
(`train.mixed_precision`, and the LDM's `precision` = requested / used), the dtypes the convolutions ran in, any
"cannot run" warning, the seconds, and a verdict:

- on CUDA: fp16 and bf16 must run as asked (convolutions in float16 / bfloat16, both checkpoints record it); bf16 on a GPU
  without bf16 support must fall back to fp32 with a warning and record "no";
- on a CPU: fp16 must fall back to fp32 with a warning and record "no"; bf16 runs only where the CPU has bf16 units.

    python benchmarks/mixed_precision.py [--out runs/bench_mixed_precision] [--precisions no,fp16,bf16] [--steps 20] [--json F]

--json writes each precision's result and verdict to a file (`benchmarks/gpu_check.py --mixed_precision_json` adds it to
its own)

Under a minute per precision on one GPU (most of it process start and imports); each precision runs in its own
process because Accelerate keeps one mixed-precision setting per process.
"""
import argparse, json, os, shutil, subprocess, sys, time, warnings
from pathlib import Path

def one(asked:str, out:Path, steps:int) -> dict:
    "Run the tiny job with `asked` in this process; return what ran and what was recorded."
    import torch
    from specdm.core import load_checkpoint, resolve_checkpoint
    from specdm.train import JobConfig, run_job
    dtypes = set()
    def hook(m, i, o):
        if isinstance(m, torch.nn.Conv2d) and torch.is_grad_enabled() and isinstance(o, torch.Tensor): dtypes.add(str(o.dtype).replace("torch.", ""))
    torch.nn.modules.module.register_module_forward_hook(hook)
    cfg = JobConfig(run_dir=str(out), n_scenes=4, scene_size=64, patch_size=32, vae_ch=16, vae_ch_mult=(1, 2), vae_steps=steps,
                    vae_batch_size=8, vae_crop=0, unet_channels=32, unet_channel_mult=(1, 2), unet_attention=(2,), ldm_steps=steps,
                    ldm_batch_size=8, warmup_steps=2, checkpoint_every=steps, mixed_precision=asked, resume=False)
    t0 = time.time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always"); res = run_job(cfg)
    vae, _ = load_checkpoint(resolve_checkpoint(res.vae)); ldm, _ = load_checkpoint(resolve_checkpoint(res.ldm))
    return dict(asked=asked, device="cuda" if torch.cuda.is_available() else "cpu",
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else "", seconds=round(time.time() - t0, 1),
                vae_records=vae["train"]["mixed_precision"], ldm_records=ldm["train"]["mixed_precision"], ldm_precision=ldm.get("precision"),
                conv_dtypes=sorted(dtypes), warnings=[str(x.message) for x in w if "mixed_precision" in str(x.message)])

def verdict(r:dict) -> str:
    "PASS/FAIL of one result against what should run on its device."
    import torch
    from specdm.train import cpu_has_bf16
    half = {"fp16": "float16", "bf16": "bfloat16"}
    if r["device"] == "cuda": should = "no" if r["asked"] == "bf16" and not torch.cuda.is_bf16_supported() else r["asked"]
    else: should = "bf16" if r["asked"] == "bf16" and cpu_has_bf16() else "no"
    ok = r["vae_records"] == r["ldm_records"] == should and r["ldm_precision"] == dict(requested=r["asked"], used=should)
    ok &= (half[should] in r["conv_dtypes"]) if should in half else r["conv_dtypes"] == ["float32"]
    ok &= bool(r["warnings"]) == (should != r["asked"])
    return f"{'PASS' if ok else 'FAIL'} (should run {should!r})"

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_mixed_precision"); p.add_argument("--precisions", default="no,fp16,bf16")
    p.add_argument("--steps", type=int, default=20); p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--json", default="", help="write the results and verdicts to this JSON file")
    a = p.parse_args(); out = Path(a.out)
    if a.one: r = one(a.one, out/a.one, a.steps); (out/f"{a.one}.json").write_text(json.dumps(r)); return
    shutil.rmtree(out, ignore_errors=True); fails = 0; results = []
    for prec in a.precisions.split(","):
        r = subprocess.run([sys.executable, __file__, "--one", prec, "--out", str(out), "--steps", str(a.steps)], capture_output=True, text=True)
        if r.returncode or not (out/f"{prec}.json").is_file(): print(f"{prec}: FAIL, the job exited {r.returncode}\n{r.stderr[-3000:]}"); fails += 1; continue
        res = json.loads((out/f"{prec}.json").read_text()); v = verdict(res); fails += v.startswith("FAIL"); results.append(dict(res, verdict=v))
        print(f"asked {prec!r} on {res['device']} {res['gpu']}: VAE checkpoint records {res['vae_records']!r}, LDM records "
              f"{res['ldm_records']!r} {res['ldm_precision']}, convolutions ran in {res['conv_dtypes']}, {res['seconds']} s -> {v}")
        for m in res["warnings"]: print("   warned:", m)
    if a.json: Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(results, indent=1))
    print("all PASS" if not fails else f"{fails} FAIL"); sys.exit(1 if fails else 0)

if __name__ == "__main__": main()
