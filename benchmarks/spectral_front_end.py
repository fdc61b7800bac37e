"""The spectral front end against the plain image branch at equal training time: reconstruction RMSE and SAD on the
validation split of a prepared hyperspectral dataset.

    specdm_prepare --layout scene --src ../shared/data/hyperspectral/indian_pines --out prepared/indian_pines \\
        --patch_size 16 --block 32 --overlap 0.5 --max_invalid 0.75 --unlabelled 0
    python benchmarks/spectral_front_end.py --data prepared/indian_pines --seconds 600 --spectral_proj 32 \\
        --json results/spectral_front_end.json
    python benchmarks/spectral_front_end.py --data prepared/indian_pines --seconds 10      # a check that it runs

Two image branches of the main job's stage 1 are trained from the same seed on the training split: the plain one
(`specdm.vae.KLAutoencoder`, C → C) and one with the spectral front end (`VAEConfig.spectral_proj` = K:
`specdm.vae.SpectralFrontEnd`, 1×1 C → K, the autoencoder at K channels, 1×1 K → C). Both have `JobConfig()`'s widths
(`vae_ch`, `vae_ch_mult`, `vae_res_blocks`, `vae_z_channels`), learning rate (`vae_lr`), batch (`vae_batch_size`) and crops
(`vae_crop` px, when smaller than the patches), with the loss of `TwoStreamVAE.forward`'s image part (L1 + 0.1·SAD + KL),
AdamW and gradient clipping at 1. The mask branch is left out: it is the same for both.

**Equal wall time**: the two take turns in slices of `--slice` seconds (batch loading included) until each has trained
`--seconds`, so that a change in the machine's load falls on both alike; they stop within one step of the budget.
At `--checkpoints` fractions of the budget (and at the end) each is evaluated on the whole validation split through
its posterior mean, as `specdm.vae.evaluate_vae` measures stage 1: RMSE of the [0, 1]-scaled images and the mean
per-pixel SAD (radians). Evaluation time is not counted. Run it alone on the machine.
"""
import argparse, json, math, os, sys, time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import specdm  # before torch: the thread policy
import numpy as np
import torch
from _timing import footer, header

from specdm.core import adamw, set_threads
from specdm.data import PreparedDataset, SegmentationDataset
from specdm.losses import image_loss, sad, to_unit
from specdm.train import JobConfig, RandomCrop
from band_scaling import vae_cfg
from specdm.vae import build_vae

class Branch:
    "One image branch in training: model, optimizer, its own batch order, and the training time it has used."
    def __init__(self, name:str, job:JobConfig, C:int, K:int, k:int, data, batch:int, seed:int, device):
        torch.manual_seed(seed); self.name, self.cfg = name, vae_cfg(job, C, K, k)
        self.ae = build_vae(self.cfg).image_ae.to(device); self.opt = adamw(self.ae.parameters(), lr=job.vae_lr)
        self.data, self.batch, self.device = data, batch, device
        self.order = torch.Generator().manual_seed(seed); self.steps, self.seconds, self.evals = 0, 0.0, []
    def step(self):
        idx = torch.randint(len(self.data), (self.batch,), generator=self.order).tolist()
        x = torch.stack([self.data[i][0] for i in idx]).to(self.device)
        p = self.ae.encode(x); xh = self.ae.decode(p.sample())
        loss = image_loss(xh, x, self.cfg.sad_weight).loss + self.cfg.kl_weight * p.kl() / x[0].numel()
        self.opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 1.0); self.opt.step(); self.steps += 1
    def train_for(self, seconds:float):
        "Train until `seconds` more have passed (at least one step)."
        t0 = time.perf_counter(); self.ae.train()
        while True:
            self.step()
            if self.device.type == "cuda": torch.cuda.synchronize()
            if time.perf_counter() - t0 >= seconds: break
        self.seconds += time.perf_counter() - t0
    @torch.no_grad()
    def evaluate(self, val, batch:int=16) -> dict:
        "RMSE ([0, 1] scale) and mean per-pixel SAD (rad) of the posterior-mean reconstructions of `val`."
        self.ae.eval(); se, n, sads = 0.0, 0, []
        for s in range(0, len(val), batch):
            x = torch.stack([val[i][0] for i in range(s, min(s + batch, len(val)))]).to(self.device)
            xh = self.ae.decode(self.ae.encode(x).mode()).clamp(-1, 1)
            se += float(((to_unit(xh) - to_unit(x)) ** 2).sum()); n += x.numel()
            sads.append(sad(to_unit(xh), to_unit(x), dim=1, reduction="none").flatten().cpu())
        r = dict(seconds=round(self.seconds, 1), steps=self.steps, rmse=math.sqrt(se / n), sad=float(torch.cat(sads).mean()))
        self.evals.append(r); return r

def main():
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()), formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", required=True, help="prepared dataset (dataset.json) with train and val splits, e.g. Indian Pines or the EnMAP tiles")
    ap.add_argument("--seconds", type=float, default=600, help="training time of each branch (wall clock, batch loading included)")
    ap.add_argument("--spectral_proj", type=int, default=32, help="K, the front end's channels")
    ap.add_argument("--slice", type=float, default=None, help="seconds per turn (default: seconds / 20, at least 1)")
    ap.add_argument("--checkpoints", type=float, nargs="*", default=[0.25, 0.5], help="also evaluate at these fractions of the budget")
    ap.add_argument("--batch", type=int, default=None, help="default: JobConfig().vae_batch_size (16)")
    ap.add_argument("--crop", type=int, default=None, help="random crops of this side; default JobConfig().vae_crop (32), unused when >= the patch size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here (e.g. results/spectral_front_end.json)")
    a = ap.parse_args()
    set_threads(a.threads); device, job = torch.device(a.device), JobConfig()
    ds = PreparedDataset(a.data); C, K, P = len(ds.bands), len(ds.class_names), ds.meta["patch_size"]
    if ds.task != "seg": raise SystemExit(f"{ds.path}: a segmentation dataset is needed (this one is {ds.task!r})")
    if not ds.meta["splits"].get("val"): raise SystemExit(f"{ds.path}: no validation split to evaluate on")
    if not 0 < a.spectral_proj < C: raise SystemExit(f"--spectral_proj must be in 1..{C - 1} (the dataset has {C} bands)")
    if P % 4: raise SystemExit(f"{ds.path}: patches of {P} px; stage 1 needs multiples of 4")
    batch, crop = a.batch or job.vae_batch_size, a.crop or job.vae_crop
    train = SegmentationDataset(ds, "train", augment=True)
    train = RandomCrop(train, crop) if 0 < crop < P else train
    val = SegmentationDataset(ds, "val")
    sl = a.slice or max(1.0, a.seconds / 20)
    print(header(torch, f"spectral front end at equal time: {ds.path}, {C} bands, {len(train)} training and {len(val)} validation patches of {P} px, "
                        f"crops {crop if 0 < crop < P else P}, batch {batch}, {a.seconds:g} s each in turns of {sl:g} s"))
    branches = [Branch("plain", job, C, K, 0, train, batch, a.seed, device), Branch(f"front end k={a.spectral_proj}", job, C, K, a.spectral_proj, train, batch, a.seed, device)]
    for b in branches: b.params = sum(p.numel() for p in b.ae.parameters())
    marks = sorted({f * a.seconds for f in a.checkpoints if 0 < f < 1} | {a.seconds})
    for mark in marks:
        while any(b.seconds < mark for b in branches):
            for b in branches:
                if b.seconds < mark: b.train_for(min(sl, mark - b.seconds))
        for b in branches:
            r = b.evaluate(val)
            print(f"  {b.name:<16} {r['seconds']:7.1f} s, {r['steps']:6d} steps ({r['seconds'] / max(r['steps'], 1) * 1e3:6.1f} ms/step): "
                  f"val RMSE {r['rmse']:.4f}, SAD {r['sad']:.4f} rad")
    p, f = branches[0].evals[-1], branches[1].evals[-1]
    print(f"\nat {a.seconds:g} s each: front end k={a.spectral_proj} against plain: RMSE {f['rmse']:.4f} vs {p['rmse']:.4f} ({100 * (f['rmse'] / p['rmse'] - 1):+.1f} %), "
          f"SAD {f['sad']:.4f} vs {p['sad']:.4f} ({100 * (f['sad'] / p['sad'] - 1):+.1f} %), steps {f['steps']} vs {p['steps']}, "
          f"parameters {branches[1].params:,} vs {branches[0].params:,}")
    print(footer())
    if a.json:
        out = dict(settings=vars(a), data=dict(path=str(ds.path), bands=C, classes=K, patch_size=P, train=len(train), val=len(val)),
                   batch=batch, crop=crop if 0 < crop < P else None, job_defaults={k: getattr(job, k) for k in ("vae_ch", "vae_ch_mult", "vae_res_blocks", "vae_z_channels", "vae_lr", "vae_batch_size", "vae_crop")},
                   branches={b.name: dict(parameters=b.params, evaluations=b.evals) for b in branches}, torch=torch.__version__, threads=torch.get_num_threads())
        Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(out, indent=1, default=str) + "\n"); print(f"wrote {a.json}")

if __name__ == "__main__":
    main()
