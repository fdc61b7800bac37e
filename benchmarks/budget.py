"""Quality per CPU minute: the main job's settings compared end to end on one prepared segmentation dataset.

    python benchmarks/budget.py --data runs/specdm/data --runs /tmp/budget --out results/budget_seg.json \
        --variant 'paper_objective:parameterization=eps,snr_gamma=0,ldm_lr=3e-4' \
        --variant 'stage1_2000:vae_steps=2000,ldm_steps=1300' --variant 'f2:vae_ch_mult=1;2,ldm_steps=1450'

`--data` is a prepared segmentation dataset: `results/budget_seg.json` used the built-in scenes the main job prepares
with its default settings (`specdm_train --run_dir RUN`, then RUN/data).

Each `--variant NAME:FIELD=VALUE,...` is the main job (`specdm.train.run_job`) with those `JobConfig` fields changed
(lists as `a;b;c`, e.g. `vae_ch_mult=1;2`; quote the argument in a shell), trained into RUNS/NAME (resumed if there; skipped when finished). A variant
that changes stage 2 only can reuse another's stage 1 with `vae_checkpoint=RUNS/OTHER/vae` (its minutes are counted).
For each:

- **CPU minutes**: stage 1's and stage 2's training time, from their `log.jsonl` (summed over resumed segments), and the
  wall time of this call to `run_job` (latent encoding and checkpoints included; 0 when it only found a finished run);
- **quality** of `--n` joint samples (DDIM, `--steps`, seed 0, for each of `--etas`): consistency (mIoU of a segmenter trained on the real
  training split — `specdm.metrics`' SpectralNet, from `--extractor` — against the generated masks), spectral FID over
  all bands with the same network, class-share total variation, mSAD and per-class SAD, and each class's mean B8 (near
  infrared, where the bands have it), against the real validation split; the same
  segmenter on the real validation pairs (the real-data reference) and on their stage-1 reconstructions (the stage-1
  reference: what the segmenter still finds after the VAE's encode–decode of real images; samples are other images,
  so it is a guide, not a bound);
- a figure (`--figure`): real validation pairs, then 8 joint samples of each variant.

Run it alone on the machine: the minutes are wall-clock on this CPU. Writes `--out` (rows keyed by variant name,
accumulated across calls); `05_train_ldm` renders its table from it.
"""
import argparse, json, os, shlex, sys, time
from pathlib import Path

import specdm  # before torch: the thread policy
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import footer, header


SETTINGS = ("vae_steps", "vae_ch_mult", "ldm_steps", "unet_channels", "unet_channel_mult", "parameterization", "snr_gamma", "ldm_lr")


def parse_variant(s:str) -> tuple[str, dict]:
    "NAME:FIELD=VALUE,... -> (name, {field: value}); list values as a;b;c."
    name, _, rest = s.partition(":")
    kv = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        kv[k.strip()] = [x for x in v.split(";")] if ";" in v else v
    return name, kv


def train_seconds(run:Path) -> float:
    "Training seconds in run/log.jsonl: the last `time` of each resumed segment, summed (the time restarts at a resume)."
    total, last = 0.0, 0.0
    for line in (run/"log.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("split") != "train" or "time" not in r: continue
        if r["time"] < last: total += last
        last = r["time"]
    return total + last


def nir(r:dict, val) -> dict|None:
    "Per-class mean of Sentinel-2's B8 (near infrared), real and synthetic, in source units (None without a B8 band)."
    names = [str(b) for b in val.bands]
    if "B8" not in names: return None
    j, sp = names.index("B8"), r["spectral"]
    return {k: [round(sp["mean_real"][i][j], 1), round(sp["mean_synthetic"][i][j], 1)] for i, k in enumerate(val.class_names)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="prepared segmentation dataset (e.g. the main job's run_dir/data)")
    p.add_argument("--runs", required=True, help="folder of the variants' run folders")
    p.add_argument("--variant", action="append", default=[], help="NAME:FIELD=VALUE,... (JobConfig fields)")
    p.add_argument("--out", required=True, help="results JSON (rows accumulate across calls)")
    p.add_argument("--extractor", default=None, help="SpectralNet folder (trained there once if absent); default: RUNS/spectral_net")
    p.add_argument("--n", type=int, default=128, help="joint samples per variant")
    p.add_argument("--n_val", type=int, default=64, help="real validation pairs")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps")
    p.add_argument("--etas", default="0,1", help="DDIM eta values to sample with (0: deterministic DDIM, 1: DDPM-like)")
    p.add_argument("--figure", default=None, help="PNG: real validation pairs, then 8 joint samples per variant")
    p.add_argument("--figure_variants", default=None, help="comma-separated variants in the figure (default: those of --variant)")
    p.add_argument("--figure_eta", type=float, default=1.0, help="DDIM eta of the figure's samples")
    p.add_argument("--figure_only", action="store_true", help="only draw the figure, from the checkpoints the rows of --out name")
    a = p.parse_args(argv)
    from specdm.core import save_json, set_threads
    from specdm.data import PreparedDataset
    from specdm.metrics import Reference, consistency, get_spectral_net, pairs_set, prepared_set, reference_normalizer
    from specdm.sampling import Pairs, load_ldm, sample_pairs
    from specdm.train import JobConfig, run_job
    set_threads(0)
    print(header(torch, "quality per CPU minute: main-job variants"), flush=True)
    ds = PreparedDataset(a.data); runs = Path(a.runs)
    val, train = prepared_set(ds, "val", a.n_val, 0), prepared_set(ds, "train")
    if a.figure_only:
        rows = json.loads(Path(a.out).read_text())["rows"]
        return figure(val, {k: rows[k]["checkpoint"] for k in (a.figure_variants.split(",") if a.figure_variants else rows)}, a.figure_eta, a.steps, Path(a.figure))
    if not a.variant: p.error("give at least one --variant (or --figure_only)")
    norm = reference_normalizer(val)
    net, sdesc = get_spectral_net(Path(a.extractor or runs/"spectral_net"), val, train, norm, steps=300, seed=0)
    ref = Reference(val, spectral_net=net, spectral_desc=sdesc, consistency_model=net.logits, consistency_desc="SpectralNet", norm=norm)
    print(f"real floor: consistency {ref.consistency_real['miou']:.4f} on {val.n} validation pairs", flush=True)
    out = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else dict(rows={})
    out.update(data=str(ds.path), segmenter=sdesc.get("path", str(a.extractor)), real_floor=ref.consistency_real, n=a.n, n_val=val.n,
               sampler="ddim", steps=a.steps, threads=torch.get_num_threads())
    out.setdefault("commands", []).append(shlex.join(["python", "benchmarks/budget.py", *(argv or sys.argv[1:])]))
    xv, yv, _ = val.read(np.arange(val.n))
    for spec in a.variant:
        name, kv = parse_variant(spec)
        cfg = JobConfig.from_params(dict(kv, data_dir=str(ds.path), run_dir=str(runs/name)))
        t0, c0 = time.time(), time.process_time()
        res = run_job(cfg)
        wall, cpu = time.time() - t0, time.process_time() - c0
        m = load_ldm(res.ldm)
        with torch.no_grad(): xr, _ = m.vae.reconstruct(m.normalizer.encode(torch.from_numpy(xv)).float(), torch.from_numpy(yv))
        ceiling = consistency(net.logits, pairs_set(Pairs(m.normalizer.decode(xr), torch.from_numpy(yv), val.bands, val.class_names)))
        # stage 1 reused (vae_checkpoint = another variant's run_dir/vae): its training time counts here too
        s1 = train_seconds(Path(cfg.vae_checkpoint) if cfg.vae_checkpoint else Path(cfg.run_dir)/"vae")
        s2 = train_seconds(Path(cfg.run_dir)/"ldm")
        row = dict(variant=name, changes=kv, vae_steps=cfg.vae_steps, ldm_steps=cfg.ldm_steps, stage1_minutes=round(s1 / 60, 2),
                   stage2_minutes=round(s2 / 60, 2), train_minutes=round((s1 + s2) / 60, 2), job_wall_minutes=round(wall / 60, 2),
                   job_cpu_minutes=round(cpu / 60, 2), vae_ceiling=ceiling["miou"], checkpoint=str(res.ldm), samples={},
                   settings={k: getattr(cfg, k) for k in SETTINGS})
        for eta in (float(e) for e in a.etas.split(",")):
            t1 = time.time(); pairs = sample_pairs(m, a.n, sampler="ddim", steps=a.steps, eta=eta, seed=0, batch_size=32)
            sample_s = (time.time() - t1) / a.n; r = ref.compare(pairs_set(pairs))
            q = dict(consistency=r["consistency"]["synthetic"]["miou"], spectral_fid=r["image_fid_spectral"]["value"],
                     class_tv=r["class_histogram"]["total_variation"], msad=r["spectral"]["msad"], sad_per_class=r["spectral"]["sad_per_class"],
                     nir_b8=nir(r, val), seconds_per_pair=round(sample_s, 3))
            row["samples"][f"{eta:g}"] = q
            print(f"{name}: train {row['train_minutes']:.1f} min (stage 1 {row['stage1_minutes']:.1f}, stage 2 {row['stage2_minutes']:.1f}); "
                  f"DDIM eta {eta:g}: consistency {q['consistency']:.4f} (ceiling {row['vae_ceiling']:.4f}); spectral FID {q['spectral_fid']:.2f}; "
                  f"class TV {q['class_tv']:.3f}; mSAD {q['msad']:.4f}", flush=True)
        out["rows"][name] = row
        save_json(out, Path(a.out))
    if a.figure:
        names = a.figure_variants.split(",") if a.figure_variants else [parse_variant(v)[0] for v in a.variant]
        figure(val, {k: out["rows"][k]["checkpoint"] for k in names}, a.figure_eta, a.steps, Path(a.figure))
    print(footer())


def figure(val, checkpoints:dict, eta:float, steps:int, path:Path):
    "Real validation pairs, then 8 joint samples (seed 0) of each variant's checkpoint, stacked in one PNG of 64 colours."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from specdm.sampling import Pairs, sample_pairs, show_pairs
    from specdm.scenes import SCENE_CLASSES, SCENE_PALETTE
    x, y, _ = val.read(np.arange(0, val.n, max(1, val.n // 8))[:8])
    sets = {"real validation pairs": Pairs(torch.from_numpy(x), torch.from_numpy(y), val.bands, val.class_names, {})}
    sets.update({f"{k}: joint samples (DDIM-{steps}, eta {eta:g})": sample_pairs(ck, 8, sampler="ddim", steps=steps, eta=eta, seed=0)
                 for k, ck in checkpoints.items()})
    pal = SCENE_PALETTE if list(val.class_names) == list(SCENE_CLASSES) else None
    tiles = []
    for title, prs in sets.items():
        fig = show_pairs(prs, 8, cols=8, palette=pal, size=0.9); fig.suptitle(title, fontsize=8, y=0.99)
        tmp = path.with_suffix(f".{len(tiles)}.png"); fig.savefig(tmp, dpi=72); plt.close(fig); tiles.append(Image.open(tmp).convert("RGB")); tmp.unlink()
    W = max(t.width for t in tiles); img = Image.new("RGB", (W, sum(t.height for t in tiles)), "white"); h = 0
    for t in tiles: img.paste(t, (0, h)); h += t.height
    path.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # a light figure for the docs
    print(f"figure: {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__": main()
