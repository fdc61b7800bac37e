"""Two-stream vs single-stream SpecDM on the built-in scenes: the paper's Table 1 (image FID, mask FID, mSAD) and more.

    papermill nbs/05_train_ldm.ipynb out.ipynb                                                     # runs/specdm
    papermill nbs/05_train_ldm.ipynb out_ss.ipynb -p vae_kind single_stream -p run_dir runs/single_stream
    python benchmarks/two_vs_single.py --runs runs/specdm runs/single_stream --data runs/specdm/data --split val --n 256 [--json results/two_vs_single.json]

Samples `--n` pairs from each run's latent-diffusion checkpoint (`<run>/ldm`, EMA weights) with one sampler, and
compares each set with the real split through one `specdm.metrics.Reference` (the real side is computed once). A third
row compares real *training* patches (as many as the real split holds, a seeded subset) with the same real split: the
floor that the FIDs of a finite sample reach even for a perfect generator. One report JSON and three figures per row
go to `--out`, with the spectral extractor (`spectral_net/`, trained once on the real training split and reused on
later runs) and `table.md`; `--json` also writes the rows with the command, the sampler and the machine's load to one
result file (`07a_report` renders it).

This is a quality benchmark. Its pairs/s column is one timing of each run's sampling, taken in sequence (not
interleaved): read it with the load printed at the start and the end, and compare speed with
`benchmarks/sampling_speed.py`, which alternates its variants.
"""
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import specdm # noqa: F401  (before torch: waiting OpenMP threads sleep)
import torch
from _timing import footer, header, load
from specdm.metrics import InceptionFeatures, Reference, get_spectral_net, pairs_set, prepared_set, reference_normalizer
from specdm.report import make_report
from specdm.sampling import load_ldm, sample_pairs

PAPER = {"two_stream": dict(image_fid=5.19, mask_fid=10.79, msad=0.03), "single_stream": dict(image_fid=70.44, mask_fid=50.01, msad=0.13)}

def row(name:str, rep:dict, rate:float|None) -> dict:
    g = lambda k: (rep.get(k) or {}).get("value")
    c, r = rep.get("consistency") or {}, rep.get("reconstruction") or {}
    return dict(name=name, n=rep["synthetic"]["n"], fid_inception=g("image_fid_inception"), fid_spectral=g("image_fid_spectral"),
                mask_fid=g("mask_fid"), msad=rep["spectral"]["msad"], class_tv=rep["class_histogram"]["total_variation"],
                cons_syn=c.get("synthetic", {}).get("miou"), cons_real=c.get("real", {}).get("miou"),
                rmse=r.get("rmse"), sad=r.get("sad"), ce=r.get("ce"), pairs_per_s=rate)

def table(rows:list[dict]) -> str:
    f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
    lines = ["| set | n | image FID (Inception, RGB) | image FID (spectral, all bands) | mask FID | mSAD (rad) | class TV | consistency mIoU (syn / real) | VAE RMSE / SAD / CE | pairs/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rec = "-" if r["rmse"] is None else f"{r['rmse']:.4f} / {r['sad']:.4f} / {r['ce']:.4f}"
        lines.append(f"| {r['name']} | {r['n']} | {f(r['fid_inception'])} | {f(r['fid_spectral'], 3)} | {f(r['mask_fid'])} | {f(r['msad'], 4)} | "
                     f"{f(r['class_tv'], 4)} | {f(r['cons_syn'], 3)} / {f(r['cons_real'], 3)} | {rec} | {f(r['pairs_per_s'], 2)} |")
    return "\n".join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", default=["runs/specdm", "runs/single_stream"], help="run folders (ldm/, vae/)")
    ap.add_argument("--ckpt", nargs="*", default=None, help="explicit LDM checkpoint per run (default <run>/ldm, its latest step)")
    ap.add_argument("--data", default="runs/specdm/data", help="prepared real dataset")
    ap.add_argument("--split", default="val"); ap.add_argument("--n", type=int, default=256, help="synthetic pairs per run")
    ap.add_argument("--sampler", default="ddim"); ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0 deterministic, 1 DDPM-like)")
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared, busy CPU)")
    ap.add_argument("--no_floor", action="store_true", help="skip the real-train-vs-real row (e.g. when adding a run to an existing table)")
    ap.add_argument("--out", default="reports/two_vs_single")
    ap.add_argument("--json", default="", help="also write the rows and how they were made to this result file (atomically)"); a = ap.parse_args()
    smp = f"{a.sampler}-{a.steps}" + (f" η={a.eta:g}" if a.eta else "")
    torch.set_num_threads(a.threads); print(header(torch, "two-stream vs single-stream")); load_start = load(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True); t00 = time.time()
    real, train = prepared_set(a.data, a.split), prepared_set(a.data, "train")
    norm = reference_normalizer(real)
    t = time.time(); net, desc = get_spectral_net(out/"spectral_net", real, train, norm, seed=a.seed)
    print(f"spectral extractor: {desc['path']} ({'reused' if desc['reused'] else 'trained'}, {time.time() - t:.0f} s); "
          f"training loss {desc['training']['final_loss']:.3f}")
    t = time.time()
    ref = Reference(real, spectral_net=net, spectral_desc=desc, inception=InceptionFeatures(), consistency_model=net.logits,
                    consistency_desc=f"SpectralNet segmenter ({desc['path']})", batch_size=a.batch_size, norm=norm)
    print(f"real side: {real.name}, n={real.n} ({time.time() - t:.0f} s)")
    rows = json.loads((out/"rows.json").read_text()) if (out/"rows.json").is_file() else [] # rows of earlier invocations
    def add(r:dict): # replace a row of the same name, print it
        rows[:] = [x for x in rows if x["name"] != r["name"]] + [r]; print(table([r]), flush=True)
        (out/"rows.json").write_text(json.dumps(rows, indent=2)) # after each row: a later failure keeps it
    if not a.no_floor:
        floor = prepared_set(a.data, "train", n=real.n, seed=a.seed)
        rep = make_report(ref, floor, out/f"real_train_vs_real_{a.split}.json", overwrite=True)
        add(row(f"real train (n={floor.n}) vs real {a.split}", rep, None))
    for i, run in enumerate(a.runs):
        run = Path(run); ck = a.ckpt[i] if a.ckpt else run/"ldm"
        m = load_ldm(ck); name = run.name
        t = time.time(); p = sample_pairs(m, a.n, sampler=a.sampler, steps=a.steps, eta=a.eta, seed=a.seed, batch_size=a.batch_size)
        rate = a.n / (time.time() - t)
        rep = make_report(ref, pairs_set(p, f"{name} ({smp}, {m.path})"), out/f"{name}.json", vae=run/"vae", overwrite=True)
        add(row(f"{name} ({m.path.name}, {smp})", rep, rate))
    md = table(rows)
    paper = "\n".join(f"| paper {k} | {v['image_fid']} | {v['mask_fid']} | {v['msad']} |" for k, v in PAPER.items())
    text = (f"{md}\n\nPaper, Table 1 (SegMunich):\n\n| model | image FID | mask FID | mSAD |\n|---|---|---|---|\n{paper}\n\n"
            f"real: {real.name}; sampler {smp}, seed {a.seed}; torch threads {a.threads}; total {time.time() - t00:.0f} s\n")
    (out/"table.md").write_text(text); (out/"rows.json").write_text(json.dumps(rows, indent=2))
    print("\n" + text); print(footer())
    if a.json:
        from specdm.core import save_json
        save_json(dict(command="python benchmarks/two_vs_single.py " + " ".join(sys.argv[1:]), real=real.name, n_real=real.n, split=a.split,
                       sampler=smp, seed=a.seed, n=a.n, threads=a.threads, load_start=load_start, load_end=load(),
                       seconds=round(time.time() - t00), rows=rows, paper=PAPER), a.json)
        print(f"results: {a.json}")

if __name__ == "__main__": main()
