"""The main job on real hyperspectral scenes, end to end: train (timed), sample, evaluate; one result file and light figures.

Prepare the scenes first (the shared data's Indian Pines and EnMAP tiles; `nbs/01b_prepare.ipynb`):

    specdm_prepare --layout scene --src ../shared/data/hyperspectral/indian_pines --out prepared/indian_pines \
        --patch_size 16 --block 32 --overlap 0.5 --max_invalid 0.75 --unlabelled 0 \
        --class_names "$(python -c 'from specdm.data import INDIAN_PINES_CLASSES as c; print(",".join(c))')"
    specdm_prepare --layout csv --src ../shared/data/hyperspectral/enmap_potsdam --out prepared/enmap --patch_size 16 \
        --max_invalid 0.75 --unlabelled 0 --class_names "$(python -c 'from specdm.data import ENMAP_POTSDAM_CLASSES as c; print(",".join(c))')"

then

    python benchmarks/hyperspectral.py --dataset indian_pines=prepared/indian_pines --dataset enmap=prepared/enmap \
        --runs /tmp/hs --out results/hyperspectral.json --figures results

For each `--dataset NAME=FOLDER`: the main job (`specdm.train.run_job`, its defaults, or `--job 'FIELD=VALUE,...'`) is
trained into RUNS/NAME and its wall time measured (run it alone on the machine: it is wall-clock on this CPU; a finished
run is not retrained and keeps the time first measured); `--n` pairs are written (DDIM-50, η = 1, seed 0) and
`specdm.report.evaluate` compares them with the real validation and training splits: stage-1 reconstruction RMSE and
SAD, per-class SAD, spectral FID over all bands, class shares, consistency (a segmenter trained on the real training
split, scored against the generated masks, and on the real split for reference). The report's figures of the
validation comparison (false-colour composites of the bands nearest 650, 550 and 450 nm with their masks, and class
mean spectra over wavelength) are copied to FIGURES/hyperspectral_NAME_{samples,spectra}.png at modest size.
`07a_report` renders its table from `--out`.
"""
import argparse, json, shlex, shutil, sys, time
from pathlib import Path

import specdm  # before torch: the thread policy

sys.path.insert(0, str(Path(__file__).parent))
from budget import parse_variant


def small_png(src:Path, dst:Path, width:int=900):
    "Copy a figure as a palette PNG at most `width` px wide (light enough to commit)."
    from PIL import Image
    im = Image.open(src).convert("RGB")
    if im.width > width: im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True); im.quantize(64).save(dst, optimize=True)


KEEP = dict(spectral=("sad_per_class", "msad", "classes_missing", "pixels_real", "pixels_synthetic"), # the class mean spectra: in the figures
            image_fid_spectral=("value", "n_real", "n_synthetic", "features"))

def brief(rep:dict) -> dict:
    "The report's numbers the table needs, without its per-band arrays (the full reports stay in RUNS/NAME/report_*)."
    out = {k: rep[k] for k in ("reconstruction", "spectral", "class_histogram", "consistency", "image_fid_spectral", "rgb") if k in rep}
    for k, keep in KEEP.items(): out[k] = {f: out[k][f] for f in keep if f in out[k]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", action="append", required=True, help="NAME=PREPARED_FOLDER (repeat for several)")
    p.add_argument("--runs", required=True, help="folder of the jobs' run folders (RUNS/NAME)")
    p.add_argument("--out", required=True, help="results JSON (rows keyed by dataset name, accumulated across calls)")
    p.add_argument("--figures", default=None, help="folder for the light copies of the figures (default: beside --out)")
    p.add_argument("--job", default="", help="JobConfig fields for every job, 'FIELD=VALUE,...' (lists as a;b;c)")
    p.add_argument("--n", type=int, default=128, help="synthetic pairs per dataset")
    a = p.parse_args(argv)
    import torch
    from _timing import header
    from specdm.core import load_json, save_json
    from specdm.data import PreparedDataset
    from specdm.report import evaluate
    from specdm.sampling import write_synthetic
    from specdm.train import JobConfig, run_job
    print(header(torch, "the main job on hyperspectral scenes"), flush=True)
    out = Path(a.out); rows = load_json(out)["rows"] if out.is_file() else {}
    figs = Path(a.figures) if a.figures else out.parent; runs = Path(a.runs)
    overrides = parse_variant("x:" + a.job)[1] if a.job else {}
    for item in a.dataset:
        name, _, folder = item.partition("=")
        ds = PreparedDataset(folder); run = runs/name
        cfg = JobConfig.from_params(dict(overrides, data_dir=str(ds.path), run_dir=str(run)))
        done = (run/"ldm"/"ckpt"/"latest").is_file() # finished before: its time is the one first measured (None if unknown)
        t0 = time.time(); res = run_job(cfg); wall = rows.get(name, {}).get("job_seconds") if done else time.time() - t0
        print(f"{name}: main job {wall if wall is None else round(wall)} s ({'measured before' if done else 'this call'})", flush=True)
        syn = run/"synthetic"
        if not (syn/"manifest.json").is_file():
            t1 = time.time(); write_synthetic(res.ldm, syn, a.n, sampler="ddim", steps=50, eta=1.0, seed=0, batch_size=32); ts = time.time() - t1
        else: ts = rows.get(name, {}).get("sample_seconds")
        reps = {}
        for split in ("val", "train"):
            rep = run/f"report_{split}"/"report.json"
            reps[split] = load_json(rep) if rep.is_file() else evaluate(ds.path, syn, rep, split=split, vae=res.vae, inception=False,
                                                                         extractor=run/"spectral_net")
        for kind in ("samples", "spectra"): small_png(Path(reps["val"]["figures"][kind]), figs/f"hyperspectral_{name}_{kind}.png")
        rows[name] = dict(data=str(ds.path), bands=len(ds.bands), wavelength_range=[float(ds.wavelengths.min()), float(ds.wavelengths.max())],
                          classes=list(ds.class_names), splits={s: len(ds.indices(s)) for s in ("train", "val", "test")},
                          ignored_pixels=ds.meta.get("ignored_pixels"), job_seconds=wall, sample_seconds=ts, n=a.n,
                          settings=dict({k: getattr(cfg, k) for k in ("vae_ch_mult", "vae_steps", "ldm_steps", "unet_channels", "parameterization",
                                                                     "snr_gamma", "unlabelled_class", "vae_spectral_proj")},
                                        patch_size=ds.meta["patch_size"], vae_crop=cfg.vae_crop if cfg.vae_crop < ds.meta["patch_size"] else 0),
                          unlabelled_class=bool(load_json(Path(res.vae)/"config.json")["vae"].get("unlabelled_class", False)),
                          reports={s: brief(r) for s, r in reps.items()},
                          figures={k: str(figs/f"hyperspectral_{name}_{k}.png") for k in ("samples", "spectra")})
        save_json(dict(rows=rows, threads=torch.get_num_threads(), command=shlex.join([sys.executable.split("/")[-1], *sys.argv])), out)
        print(f"{name}: written to {out}", flush=True)


if __name__ == "__main__":
    main()
