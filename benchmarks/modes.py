"""Consistency of each sampling mode and guidance scale: do the generated masks agree with their images?

    python benchmarks/modes.py --ckpt runs/specdm/ldm --out results/modes_seg.json

For a trained segmentation checkpoint and the prepared dataset it was trained on (its `data.source`, or `--data`):

- a real-data segmenter (`specdm.metrics`' SpectralNet, trained on the training split as `specdm_evaluate` does, or
  reused from `--extractor`) gives the **real floor**: its mIoU on the real validation pairs;
- for each mode and guidance scale, `--n` pairs are sampled (conditions: the training split's masks or images, cycled)
  and the **consistency** is the segmenter's mIoU against the generated masks (for `mask_to_image` the masks are the
  given real ones, so it measures whether the images show them);
- `image_to_mask` on the real validation images: the model's predicted masks against the real ones (mIoU), i.e. the
  generator used as a segmenter;
- seconds per pair for each, with this process's threads.

Writes one JSON file (`--out`); `09_experiments` renders its table from it. Run it alone on the machine.
"""
import argparse, json, os, sys, time
from pathlib import Path

import specdm  # before torch: the thread policy
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import footer, header


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="latent-diffusion checkpoint (a per-part model samples every mode)")
    p.add_argument("--data", default=None, help="prepared dataset; default: the checkpoint's training data")
    p.add_argument("--out", required=True, help="results JSON")
    p.add_argument("--modes", default="joint,joint_then_image,mask_to_image", help="comma-separated sampling modes")
    p.add_argument("--scales", default="1,2,4", help="guidance scales for the conditional modes (joint ignores them)")
    p.add_argument("--n", type=int, default=64, help="pairs per mode and scale")
    p.add_argument("--sampler", default="ddim"); p.add_argument("--steps", type=int, default=50); p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--n_val", type=int, default=64, help="real validation pairs for the floor and image_to_mask")
    p.add_argument("--extractor", default=None, help="SpectralNet folder (trained there once if absent); default: beside --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="also save a PNG: 8 real validation pairs, 8 joint samples, and images drawn for the real masks")
    p.add_argument("--figure_scale", type=float, default=2.0, help="guidance scale of the figure's mask_to_image row (1 for joint-only models)")
    a = p.parse_args(argv)
    from specdm.core import save_json, set_threads
    from specdm.data import PreparedDataset
    from specdm.metrics import Agreement, consistency, get_spectral_net, pairs_set, prepared_set, reference_normalizer
    from specdm.sampling import Conditions, load_ldm, needs_conditions, sample_pairs
    set_threads(0)
    print(header(torch, "sampling modes: consistency and cost"), flush=True)
    m = load_ldm(a.ckpt); ds = PreparedDataset(a.data or m.data["source"])
    if m.task != "seg": raise SystemExit("consistency needs per-pixel classes: give a segmentation checkpoint")
    real_val, real_train = prepared_set(ds, "val", a.n_val, a.seed), prepared_set(ds, "train")
    norm = reference_normalizer(real_val); ext = Path(a.extractor or Path(a.out).parent/"spectral_net")
    net, sdesc = get_spectral_net(ext, real_val, real_train, norm, steps=300, seed=a.seed)
    floor = consistency(net.logits, real_val)
    print(f"real floor (segmenter on {real_val.n} real validation pairs): mIoU {floor['miou']:.4f}", flush=True)
    # the ceiling stage 1 allows: the real validation images through the VAE (encode, decode), against their real masks
    from specdm.sampling import Pairs
    xv, yv, _ = real_val.read(np.arange(real_val.n))
    with torch.no_grad(): xr, _ = m.vae.reconstruct(m.normalizer.encode(torch.from_numpy(xv)).float(), torch.from_numpy(yv))
    ceiling = consistency(net.logits, pairs_set(Pairs(m.normalizer.decode(xr), torch.from_numpy(yv), real_val.bands, real_val.class_names)))
    print(f"stage-1 ceiling (segmenter on the VAE's reconstructions of them): mIoU {ceiling['miou']:.4f}", flush=True)
    rows = []
    K, ig = len(ds.class_names), ds.meta["ignore_index"]
    for mode in a.modes.split(","):
        for s in ([1.0] if not (needs_conditions(mode) or mode == "joint_then_image") else [float(v) for v in a.scales.split(",")]):
            t0 = time.time()
            pairs = sample_pairs(m, a.n, sampler=a.sampler, steps=a.steps, eta=a.eta, seed=a.seed, mode=mode, guidance_scale=s,
                                 conditions=ds if needs_conditions(mode) else None, batch_size=32)
            sec = (time.time() - t0) / a.n
            c = consistency(net.logits, pairs_set(pairs))
            shares = np.bincount(pairs.masks[pairs.masks != ig].numpy(), minlength=K)[:K]
            rows.append(dict(mode=mode, guidance_scale=s, n=a.n, consistency=c["miou"], pixel_accuracy=c["pixel_accuracy"],
                             seconds_per_pair=round(sec, 3), class_shares=(shares / max(shares.sum(), 1)).round(4).tolist()))
            print(f"{mode:18s} s={s:g}: consistency mIoU {c['miou']:.4f} (pixel accuracy {c['pixel_accuracy']:.4f}), {sec:.2f} s/pair", flush=True)
    # the generator as a segmenter: real validation images -> masks, against the real masks
    x, y, _ = real_val.read(np.arange(real_val.n))
    t0 = time.time()
    seg = {}
    for s in [float(v) for v in a.scales.split(",")]:
        t0 = time.time()
        pred = sample_pairs(m, real_val.n, sampler=a.sampler, steps=a.steps, eta=a.eta, seed=a.seed, mode="image_to_mask", guidance_scale=s,
                            conditions=Conditions(torch.from_numpy(x), torch.from_numpy(y), f"{ds.path} (val)"), batch_size=32).masks
        agr = Agreement(K, ig); agr.update(lambda _: torch.nn.functional.one_hot(pred, K).permute(0, 3, 1, 2).float(), None, torch.from_numpy(y))
        r = agr.compute(); sec = (time.time() - t0) / real_val.n
        seg[str(s)] = dict(miou=r["miou"], pixel_accuracy=r["pixel_accuracy"], seconds_per_pair=round(sec, 3))
        print(f"image_to_mask on real validation images, s={s:g}: mIoU {r['miou']:.4f} against their real masks, {sec:.2f} s/pair", flush=True)
    real_shares = np.array(ds.meta["class_pixels"]["train"], float)
    out = dict(checkpoint=str(m.path), data=str(ds.path), class_names=list(ds.class_names), sampler=a.sampler, steps=a.steps, eta=a.eta,
               seed=a.seed, threads=torch.get_num_threads(), segmenter=sdesc["path"], real_floor=floor, vae_ceiling=ceiling, rows=rows, image_to_mask=seg,
               real_class_shares=(real_shares / real_shares.sum()).round(4).tolist(), command="python benchmarks/modes.py " + " ".join(argv or sys.argv[1:]))
    save_json(out, Path(a.out))
    if a.figure: figure(m, real_val, a, Path(a.figure))
    print(footer())


def figure(m, real_val, a, path):
    "Real validation pairs, joint samples, and mask_to_image samples for the same real masks: three grids in one PNG."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from specdm.sampling import Conditions, Pairs, sample_pairs, show_pairs
    from specdm.scenes import SCENE_CLASSES, SCENE_PALETTE
    x, y, _ = real_val.read(np.arange(0, real_val.n, max(1, real_val.n // 8))[:8])
    real = Pairs(torch.from_numpy(x), torch.from_numpy(y), real_val.bands, real_val.class_names, dict(start=0))
    joint = sample_pairs(m, 8, sampler=a.sampler, steps=a.steps, eta=a.eta, seed=a.seed)
    m2i = sample_pairs(m, 8, sampler=a.sampler, steps=a.steps, eta=a.eta, seed=a.seed, mode="mask_to_image", conditions=real, guidance_scale=a.figure_scale)
    pal = SCENE_PALETTE if list(real_val.class_names) == list(SCENE_CLASSES) else None
    tiles = []
    for title, prs in (("real validation pairs", real), ("joint samples", joint), (f"mask_to_image, s = {a.figure_scale:g}, for the real masks above", m2i)):
        fig = show_pairs(prs, 8, cols=8, palette=pal, size=0.9); fig.suptitle(title, fontsize=8, y=0.99)
        tmp = path.with_suffix(f".{len(tiles)}.png"); fig.savefig(tmp, dpi=72); plt.close(fig); tiles.append(Image.open(tmp).convert("RGB")); tmp.unlink()
    W = max(t.width for t in tiles); out = Image.new("RGB", (W, sum(t.height for t in tiles)), "white"); h = 0
    for t in tiles: out.paste(t, (0, h)); h += t.height
    path.parent.mkdir(parents=True, exist_ok=True); out.save(path, optimize=True); print(f"figure: {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__": main()
