"""Sampling in bf16 against fp32 on a trained checkpoint: pairs per second, and what the pairs are worth.

    python benchmarks/sampling_precision.py --ckpt runs/specdm/ldm --real runs/specdm/data --work runs/precision \
        [--n 128] [--rounds 3] [--pairs 32] [--batch 16] [--out results/sampling_precision.json]

1. Speed: `specdm.sampling.generate` (DDIM-50, η 1, with decoding) of `--pairs` pairs in batches of `--batch`, in
   alternating rounds: the model as `load_ldm` gives it, with `precision="no"` (fp32) and `precision="bf16"` (bf16
   autocast on the U-Net and the decoders; on a CPU without bf16 units that runs in fp32, with a warning, and the
   ratio is about 1). Medians and the ratio are printed with the threads, CPU and load.
2. Quality: `--n` pairs written by `write_synthetic` in each precision (same seeds; into `--work`), both compared with
   the real validation split by `specdm.report.evaluate` with one spectral extractor (trained once on the real training
   split): consistency (mIoU of a real-data segmenter on the generated masks), spectral FID, mSAD and class-share TV.
   Also: how far the bf16 pairs are from the fp32 pairs of the same seeds (relative image difference, mask agreement).

Everything is written to `--out` (rendered in nbs/05_train_ldm.ipynb, "Speed on the CPU").
"""
import argparse, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
from _timing import cpu_units, footer, header, interleaved, load, med, table, write_result
from specdm.core import cpu_has_bf16, set_threads
from specdm.metrics import folder_set
from specdm.report import evaluate
from specdm.sampling import generate, load_ldm, write_synthetic

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="latent-diffusion checkpoint (e.g. the main job's runs/specdm/ldm)")
    ap.add_argument("--real", required=True, help="the prepared dataset it was trained on (its val split is the reference)")
    ap.add_argument("--work", required=True, help="folder for the two synthetic sets and their reports")
    ap.add_argument("--n", type=int, default=128, help="pairs written and evaluated per precision")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per precision, alternating")
    ap.add_argument("--pairs", type=int, default=32, help="pairs per timed round")
    ap.add_argument("--batch", type=int, default=16, help="pairs denoised at once")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--out", default=None, help="write the figures to this JSON file")
    a = ap.parse_args()
    threads = set_threads(a.threads); start = load()
    print(header(torch, f"sampling precision: DDIM-50 η 1 with decoding, {a.pairs} pairs per round, batch {a.batch}"))
    print(f"bf16 units on this CPU: {cpu_has_bf16()}")
    m = load_ldm(a.ckpt, "cpu")
    run = lambda p: (lambda: generate(m, range(a.pairs), steps=50, eta=1.0, batch_size=a.batch, precision=p))
    t = interleaved({"no": run("no"), "bf16": run("bf16")}, a.rounds, 1)
    print(f"seconds per pair (medians over {a.rounds} rounds):\n" + table(t, "no", unit="ms", per=a.pairs))

    res = {}
    for p in ("no", "bf16"):
        folder = os.path.join(a.work, f"synthetic_{p}"); t0 = time.perf_counter()
        write_synthetic(a.ckpt, folder, a.n, eta=1.0, batch_size=a.batch, precision=p)
        wall = time.perf_counter() - t0
        rep = evaluate(a.real, folder, os.path.join(a.work, f"report_{p}.json"), inception=False, figures=False,
                       extractor=os.path.join(a.work, "spectral_net"))
        res[p] = dict(write_seconds=wall, consistency=rep["consistency"]["synthetic"]["miou"], real_floor=rep["consistency"]["real"]["miou"],
                      spectral_fid=rep["image_fid_spectral"]["value"], msad=rep["spectral"]["msad"], class_tv=rep["class_histogram"]["total_variation"])
        print(f"{p}: {a.n} pairs written in {wall:.1f} s (load and files included); " + ", ".join(f"{k} {v:.4g}" for k, v in res[p].items() if k != "write_seconds"))
    f32, b16 = (folder_set(os.path.join(a.work, f"synthetic_{p}")) for p in ("no", "bf16"))
    x0, y0, _ = f32.read(range(f32.n)); x1, y1, _ = b16.read(range(b16.n))
    diff = dict(relative_image_difference=float(np.linalg.norm(x1 - x0) / np.linalg.norm(x0)), mask_agreement=float((y1 == y0).mean()))
    print(f"bf16 pairs against the fp32 pairs of the same seeds: relative image difference {diff['relative_image_difference']:.4f}, "
          f"masks equal at {diff['mask_agreement']:.2%} of pixels")
    print(footer())
    if a.out:
        out = dict(command="python benchmarks/sampling_precision.py " + " ".join(sys.argv[1:]), cpu=cpu_units(), bf16_units=cpu_has_bf16(),
                   torch=torch.__version__, threads=threads, load_start=start, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"),
                   checkpoint=os.path.abspath(a.ckpt), n=a.n, pairs_per_round=a.pairs, batch=a.batch,
                   seconds_per_pair={k: med(v) / a.pairs for k, v in t.items()}, speedup=med(t["no"]) / med(t["bf16"]),
                   quality=res, bf16_vs_fp32=diff)
        write_result(out, a.out)

if __name__ == "__main__":
    main()
