"""Dark tile edges: brightness of the edge rows and columns against the interior, for real, VAE-reconstructed and sampled images.

    python benchmarks/edges.py --ldm runs/specdm/ldm --data runs/specdm/data --out results/edges.json [--ldm other/ldm ...]

For each stage-2 checkpoint (its own stage 1 inside) it reads `--n` real validation patches, reconstructs them through
the VAE (posterior mean), and samples `--n` pairs jointly (DDIM-50, η = 1, seed 0). For each set it prints the mean
over bands and patches of the outer `--width` rows / columns at each side (top, bottom, left, right) and of the whole
`--width`-pixel frame, each divided by the mean of the interior (the patch without a frame of 2·width pixels), in
source units. A ratio below 1 is an edge darker than the interior. Real patches give the reference: their edges are
not darker on average. Where the reconstructions already darken an edge, the cause is stage 1, not the diffusion model.
"""
import argparse, sys
from pathlib import Path

import specdm  # before torch: the thread policy
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import header, footer, write_result

SIDES = ("frame", "top", "bottom", "left", "right")

def edge_ratios(a:np.ndarray, w:int=2) -> dict:
    "Mean of each edge strip (and of the whole frame) over the interior's mean; `a` is (N, C, H, W) in source units."
    a = a.mean(1) # over bands: (N, H, W)
    inner = a[:, 2 * w:-2 * w, 2 * w:-2 * w].mean()
    frame = np.ones(a.shape[1:], bool); frame[w:-w, w:-w] = False
    strips = dict(frame=a[:, frame], top=a[:, :w], bottom=a[:, -w:], left=a[:, :, :w], right=a[:, :, -w:])
    return {k: float(v.mean() / inner) for k, v in strips.items()}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ldm", nargs="+", required=True, help="stage-2 checkpoints (run folders' ldm/ or checkpoint folders)")
    p.add_argument("--data", required=True, help="the prepared dataset they were trained on (its validation split is read)")
    p.add_argument("--n", type=int, default=64, help="validation patches read and pairs sampled per model")
    p.add_argument("--width", type=int, default=2, help="pixels in each edge strip; the interior leaves out 2 × width at each side")
    p.add_argument("--out", default=None, help="results JSON")
    a = p.parse_args(argv)
    from specdm.core import set_threads
    from specdm.data import PreparedDataset
    from specdm.sampling import load_ldm, sample_pairs
    set_threads(0); print(header(torch, "edges: edge strips over the interior (mean over bands and patches, source units)"))
    ds = PreparedDataset(a.data); idx = ds.indices("val")[:a.n]
    if not (1 <= a.width and 4 * a.width < ds.meta["patch_size"]): raise SystemExit(f"--width must be >= 1 and leave an interior: 4 × width < {ds.meta['patch_size']} px")
    if ds.task != "seg": raise SystemExit(f"{ds.path}: a segmentation dataset is needed, this one is {ds.task!r}")
    real = np.nan_to_num(np.stack([np.asarray(ds.images[i], np.float32) for i in idx]))
    masks = torch.from_numpy(np.stack([np.asarray(ds.masks[i]) for i in idx])).long()
    out = dict(data=str(ds.path), n=len(idx), width=a.width, real=edge_ratios(real, a.width), models=[])
    line = lambda name, r: print(f"  {name:<28}" + "  ".join(f"{k} {r[k]:.3f}" for k in SIDES))
    line("real validation patches", out["real"])
    for ck in a.ldm:
        m = load_ldm(ck, "cpu")
        if len(m.data["class_names"]) != len(ds.class_names) or len(m.data["bands"]) != len(ds.bands):
            raise SystemExit(f"{ck}: trained on {len(m.data['bands'])} bands and {len(m.data['class_names'])} classes, {ds.path} has {len(ds.bands)} and {len(ds.class_names)}")
        with torch.no_grad(): rec = m.normalizer.decode(m.vae.reconstruct(m.normalizer.encode(torch.from_numpy(real)), masks)[0]).numpy()
        joint = sample_pairs(m, len(idx), sampler="ddim", steps=50, eta=1.0, seed=0, batch_size=32).images.numpy()
        pad = {c.downsample_pad for c in (m.vae.config.image, m.vae.config.mask)}
        row = dict(ldm=str(m.path), downsample_pad=sorted(pad), reconstructed=edge_ratios(rec, a.width), joint=edge_ratios(joint, a.width))
        print(f"{m.path} (downsample pad {', '.join(row['downsample_pad'])}):")
        line("VAE reconstructions", row["reconstructed"]); line("joint samples", row["joint"])
        out["models"].append(row)
    print(footer())
    if a.out: write_result(out, a.out); print(f"wrote {a.out}")

if __name__ == "__main__": main()
