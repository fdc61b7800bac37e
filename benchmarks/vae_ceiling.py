"""Stage 1's ceiling on image–mask consistency: real validation pairs passed through a VAE checkpoint.

    python benchmarks/vae_ceiling.py --data runs/specdm/data --vae runs/specdm/vae/ckpt/step_0001000 [more checkpoints] \
        --extractor reports/spectral_net --out results/vae_ceiling.json

A segmenter trained on the real training split (`specdm.metrics`' SpectralNet, trained once into `--extractor` if it is
not there) is scored against the real masks on (a) the real validation images and (b) the same images encoded and
decoded by each VAE. No sample decoded by that VAE can agree with its mask better than (b) allows. Also prints each
VAE's image RMSE and SAD on those pairs (in [-1, 1] units and radians) and its mask reconstruction accuracy.
"""
import argparse, sys
from pathlib import Path

import specdm  # before torch: the thread policy
import numpy as np
import torch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="prepared segmentation dataset the VAEs were trained on")
    p.add_argument("--vae", nargs="+", required=True, help="VAE checkpoint folders (or run folders with ckpt/latest)")
    p.add_argument("--extractor", required=True, help="SpectralNet folder; trained there (300 steps) if absent")
    p.add_argument("--n_val", type=int, default=64); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="results JSON")
    a = p.parse_args(argv)
    from specdm.core import save_json, set_threads
    from specdm.data import PreparedDataset
    from specdm.losses import sad
    from specdm.metrics import consistency, get_spectral_net, pairs_set, prepared_set, reference_normalizer
    from specdm.sampling import Pairs
    from specdm.vae import load_vae, mask_from_logits
    set_threads(0)
    ds = PreparedDataset(a.data); val = prepared_set(ds, "val", a.n_val, a.seed)
    net, sdesc = get_spectral_net(a.extractor, val, prepared_set(ds, "train"), reference_normalizer(val), steps=300, seed=a.seed)
    x, y, _ = val.read(np.arange(val.n)); xn = torch.from_numpy(ds.normalizer.encode(x)).float(); yt = torch.from_numpy(y)
    real = consistency(net.logits, val); print(f"real validation images: mIoU {real['miou']:.4f} ({val.n} pairs)")
    rows = []
    for v in a.vae:
        vae = load_vae(v).eval()
        with torch.no_grad(): xr, lg = vae.reconstruct(xn, yt)
        c = consistency(net.logits, pairs_set(Pairs(ds.normalizer.decode(xr), yt, val.bands, val.class_names)))
        lab = yt != ds.meta["ignore_index"]
        row = dict(vae=str(v), miou=c["miou"], pixel_accuracy=c["pixel_accuracy"], rmse=float((xr - xn).square().mean().sqrt()),
                   sad=float(sad(xr, xn)), mask_accuracy=float((mask_from_logits(lg) == yt)[lab].float().mean()))
        rows.append(row); print(f"{v}: mIoU {row['miou']:.4f}, RMSE {row['rmse']:.4f}, SAD {row['sad']:.4f} rad, mask accuracy {row['mask_accuracy']:.4f}")
    if a.out: save_json(dict(data=str(ds.path), segmenter=sdesc["path"], real=real, rows=rows, command="python benchmarks/vae_ceiling.py " + " ".join(argv or sys.argv[1:])), Path(a.out))


if __name__ == "__main__": main()
