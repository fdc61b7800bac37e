"""Stage-1 and stage-2 cost against the band count (issue 13, item 4): training-step time, peak memory and multiply-adds
at 10, 50, 100, 200 and 224 bands, with the main job's default widths, patch size and batch size.

    python benchmarks/band_scaling.py [--json results/band_scaling.json]
    python benchmarks/band_scaling.py --bands 50 100 200 224 --spectral_proj 32   # the front end beside the plain branch (k < every band count)
    python benchmarks/band_scaling.py --quick                  # a few seconds: a smoke run at tiny sizes

What is timed (each a forward + backward + AdamW step with gradient clipping at 1, as `specdm.train.run_job` trains):

- **stage 1, image branch** of the two-stream VAE (`specdm.vae`) built from `JobConfig()`'s defaults (`vae_ch`,
  `vae_ch_mult`, `vae_res_blocks`, `vae_z_channels`; printed and saved with the results) on C bands: L1 + 0.1·SAD + KL on `vae_crop`-px
  crops (32), `vae_batch_size` (16) of them — what stage 1 trains on. The mask branch does not depend on C; it is
  timed once at `--classes` classes. With `--spectral_proj K` the same branch with the opt-in spectral front end
  (`VAEConfig.spectral_proj`: 1×1 C → K, the autoencoder at K channels, 1×1 K → C) is timed beside it.
- **stage 2**: the main job's U-Net (`unet_config(JobConfig(), 8)`) and loss (its parameterization and min-SNR-γ,
  EMA update) on `ldm_batch_size` (32) joint latents of `patch_size / f` px (f = 2 ** (len(vae_ch_mult) - 1)). The joint
  latent has 4 + 4 channels at every band count, so this step is the same computation at every C and is timed once;
  stage 2's only band-dependent cost is encoding the training patches once (8 flips each), timed per C as "encode".

All variants run in interleaved rounds (`_timing.interleaved`: A B C … A B C …) after warm-up rounds; the tables give
medians. Peak memory is measured in a fresh process per variant (`--_child`), because a process's peak RSS never goes
down: the process builds the model, runs one warm-up and two timed steps, and reports its peak resident set
from just before the first step (Linux's VmHWM, reset there through /proc/self/clear_refs) and that peak minus its RSS
at that moment (the step's working set: activations, gradients, AdamW's moments, allocator caches). On CUDA it reports `torch.cuda.max_memory_allocated` instead.
Multiply-adds of one step are counted with `torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix
products; element-wise work — the loss, norms, activations — is not counted), which does not depend on the machine's load.

Where the time goes at the largest band count: the image branch's first convolution (C → 32, 3×3), its last (32 → C,
3×3) and the image loss (L1 + 0.1·SAD on C bands), each timed alone (forward + backward, interleaved), against the
whole step. Then the ratio of stage-1 time at the largest to the smallest band count against the band-count ratio
(224 / 10 = 22.4): below it, stage-1 cost grows less than linearly; a straight-line fit t = a + b·C gives the share of
the band-dependent part.

Run it alone on the machine (it prints the threads, the CPU's vector units and the load at the start and the end).
"""
import argparse, copy, json, math, os, resource, subprocess, sys, time
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import specdm  # before torch: the thread policy
import numpy as np
import torch
from _timing import cores_usable, cpu_units, footer, header, interleaved, load, med

from specdm.core import adamw, set_threads
from specdm.ddpm import EMA, DiffusionConfig, GaussianDiffusion, UNet
from specdm.losses import image_loss
from specdm.train import JobConfig, unet_config, vae_config
from specdm.vae import build_vae, one_hot

BANDS = (10, 50, 100, 200, 224)

def rss_mb() -> float:
    "Resident set size of this process now, MB (/proc/self/statm)."
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def peak_rss_mb() -> float:
    "Peak resident set size of this process since the last `reset_peak` (VmHWM), else since it started (ru_maxrss), MB."
    try: return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 # Linux: KB

def reset_peak() -> bool:
    "Reset the peak RSS to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs); whether it could."
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        return True
    except OSError: return False

def vae_cfg(job:JobConfig, C:int, K:int, k:int=0):
    "The main job's stage-1 config for C bands and K classes (`specdm.train.vae_config`), with `spectral_proj=k`."
    ds = SimpleNamespace(bands=[None] * C, class_names=[None] * K, task="seg", meta=dict(ignore_index=255))
    return replace(vae_config(job, ds), spectral_proj=k)

class ImageStep:
    "One training step of the image branch: encode, sample z, decode, L1 + λ·SAD + KL (as `TwoStreamVAE.forward`), backward, clip, AdamW."
    def __init__(self, job, C, K, k, batch, size, device, seed=0):
        torch.manual_seed(seed); self.cfg = vae_cfg(job, C, K, k)
        self.ae = build_vae(self.cfg).image_ae.to(device)
        self.opt = adamw(self.ae.parameters(), lr=job.vae_lr)
        g = torch.Generator().manual_seed(seed)
        self.x = (torch.rand(batch, C, size, size, generator=g) * 2 - 1).to(device)
    def forward(self): return self.ae.decode(self.ae.encode(self.x).sample())
    def __call__(self):
        p = self.ae.encode(self.x); xh = self.ae.decode(p.sample())
        loss = image_loss(xh, self.x, self.cfg.sad_weight).loss + self.cfg.kl_weight * p.kl() / self.x[0].numel()
        self.opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 1.0); self.opt.step()

class MaskStep:
    "One training step of the mask branch (cross-entropy on one-hot masks + KL), which does not depend on the band count."
    def __init__(self, job, K, batch, size, device, seed=0):
        torch.manual_seed(seed); self.cfg = vae_cfg(job, 10, K)
        self.ae = build_vae(self.cfg).mask_ae.to(device); self.opt = adamw(self.ae.parameters(), lr=job.vae_lr)
        self.y = torch.randint(0, K, (batch, size, size), generator=torch.Generator().manual_seed(seed)).to(device)
    def __call__(self):
        from specdm.losses import mask_loss
        p = self.ae.encode(one_hot(self.y, self.cfg.num_classes)); logits = self.ae.decode(p.sample())
        loss = mask_loss(logits, self.y, 255) + self.cfg.kl_weight * p.kl() / self.y[0].numel()
        self.opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 1.0); self.opt.step()

class LatentStep:
    "One stage-2 training step of the main job's U-Net on (batch, 8, size/4, size/4) joint latents, with the EMA update."
    def __init__(self, job, batch, size, device, seed=0):
        torch.manual_seed(seed); ch = 2 * job.vae_z_channels; f = 2 ** (len(job.vae_ch_mult) - 1)
        self.net = UNet(unet_config(job, ch)).to(device); self.ema = EMA(self.net, job.ema_decay)
        self.opt = adamw(self.net.parameters(), lr=job.ldm_lr)
        self.process = GaussianDiffusion.from_config(DiffusionConfig(schedule=job.schedule, parameterization=job.parameterization))
        g = torch.Generator().manual_seed(seed)
        self.z = torch.randn(batch, ch, size // f, size // f, generator=g).to(device)
        self.split, self.snr = (job.vae_z_channels, job.vae_z_channels), job.snr_gamma or None
    def __call__(self):
        loss = self.process.training_loss(self.net, self.z, split=self.split, snr_gamma=self.snr)
        self.opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0); self.opt.step(); self.ema.update(self.net)

class Encode:
    "Stage 2's one-off, band-dependent work: the image encoder's posterior over `batch` whole patches (no gradient)."
    def __init__(self, job, C, K, k, batch, size, device, seed=0):
        torch.manual_seed(seed); self.ae = build_vae(vae_cfg(job, C, K, k)).image_ae.to(device).eval()
        self.x = (torch.rand(batch, C, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1).to(device)
    @torch.no_grad()
    def __call__(self): self.ae.encode(self.x)

def synced(fn, device):
    "`fn`, followed by a CUDA synchronisation on a GPU (so that the time is the kernels', not their launch)."
    if device.type != "cuda": return fn
    def run(): fn(); torch.cuda.synchronize()
    return run

def macs(fn, forward=None) -> tuple[float, dict]:
    """Multiply-adds of one call of `fn` (FLOPs / 2 of convolutions and matmuls, forward and backward), and per module of
    one call of `forward` (the forward pass alone: the counter attributes backward work to modules unreliably)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: fn()
    total, per = fc.get_total_flops() / 2, {}
    if forward is not None:
        with FlopCounterMode(display=False) as ff, torch.no_grad(): forward()
        per = {k: sum(v.values()) / 2 for k, v in ff.get_flop_counts().items()}
    return total, per

# --- peak memory, one fresh process per variant --------------------------------------------------------------------

def child(a):
    "Run one variant for a warm-up and two steps in this (fresh) process; print its memory as JSON."
    device = torch.device(a.device); job = JobConfig(); what, C, k = a._child
    fn = {"image": lambda: ImageStep(job, C, a.classes, k, a.batch, a.size, device),
          "mask": lambda: MaskStep(job, a.classes, a.batch, a.size, device),
          "stage2": lambda: LatentStep(job, a.ldm_batch, a.patch, device)}[what]()
    if device.type == "cuda": torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    before, reset = rss_mb(), reset_peak()
    for _ in range(3): fn()
    out = dict(rss_before_mb=round(before, 1), peak_rss_mb=round(peak_rss_mb(), 1), step_mb=round(peak_rss_mb() - before, 1),
               peak_since="the first step" if reset else "the process started (VmHWM could not be reset: step_mb may include the imports)")
    if device.type == "cuda": torch.cuda.synchronize(); out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))

def memory(a, what:str, C:int=0, k:int=0) -> dict:
    "Memory of one variant, measured in a fresh process (`--_child`)."
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", what, str(C), str(k), "--classes", str(a.classes), "--batch", str(a.batch),
           "--size", str(a.size), "--ldm_batch", str(a.ldm_batch), "--patch", str(a.patch), "--device", a.device, "--threads", str(a.threads)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"memory of {what} at {C} bands failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

# --- the parts of the image branch at the largest band count ------------------------------------------------------------

def parts(job, C:int, k:int, a, device) -> dict:
    "Forward + backward of the first conv, the last conv and the image loss alone, and of the whole image-branch step."
    st = ImageStep(job, C, a.classes, k, a.batch, a.size, device)
    ae = st.ae.ae if k else st.ae; x = st.x; B, _, H, W = x.shape; ch = job.vae_ch
    first = [copy.deepcopy(ae.encoder.conv_in)] + ([copy.deepcopy(st.ae.proj_in)] if k else [])
    last = [copy.deepcopy(ae.decoder.conv_out)] + ([copy.deepcopy(st.ae.proj_out)] if k else [])
    h = torch.randn(B, ch, H, W, device=device, requires_grad=True)
    def run_first():
        y = first[1](x) if k else x; y = first[0](y); y.backward(torch.ones_like(y))
    def run_last():
        y = last[0](h); y = last[1](y) if k else y; y.backward(torch.ones_like(y)); h.grad = None
    xh = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    def run_loss(): xh.grad = None; image_loss(xh, x, 0.1).loss.backward()
    names = {"first conv" + (f" (1x1 {C}->{k}, then 3x3 {k}->{ch})" if k else f" (3x3 {C}->{ch})"): run_first,
             "last conv" + (f" (3x3 {ch}->{k}, then 1x1 {k}->{C})" if k else f" (3x3 {ch}->{C})"): run_last,
             f"image loss (L1 + 0.1 SAD, {C} bands)": run_loss, "whole image-branch step": st}
    t = interleaved({n: synced(f, device) for n, f in names.items()}, a.rounds, a.warmup)
    return {n: med(v) for n, v in t.items()}

# --- main -------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--bands", type=int, nargs="+", default=list(BANDS), help="band counts (default 10 50 100 200 224)")
    ap.add_argument("--spectral_proj", type=int, default=0, help="also time the image branch with a spectral front end of this many channels (0: plain only)")
    ap.add_argument("--classes", type=int, default=16, help="mask classes (Indian Pines: 16); only the mask branch depends on it")
    ap.add_argument("--batch", type=int, default=None, help="stage-1 batch (default: JobConfig().vae_batch_size, 16)")
    ap.add_argument("--size", type=int, default=None, help="stage-1 crop side in px (default: JobConfig().vae_crop, 32)")
    ap.add_argument("--ldm_batch", type=int, default=None, help="stage-2 batch (default: JobConfig().ldm_batch_size, 32)")
    ap.add_argument("--patch", type=int, default=None, help="patch side in px, stage 2's latent is patch / f (default: JobConfig().patch_size, 64)")
    ap.add_argument("--rounds", type=int, default=10, help="timed rounds (medians are reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--no_memory", action="store_true", help="skip the per-variant memory processes")
    ap.add_argument("--quick", action="store_true", help="smoke run: bands 10 and 24, batch 2, 16-px crops and patches, 2 rounds")
    ap.add_argument("--json", default=None, help="write the results here (e.g. results/band_scaling.json)")
    ap.add_argument("--_child", nargs=3, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    job = JobConfig()
    if a.quick: a.bands, a.batch, a.size, a.ldm_batch, a.patch, a.rounds, a.warmup = [10, 24], 2, 16, 2, 16, 2, 1
    a.batch, a.size = a.batch or job.vae_batch_size, a.size or (job.vae_crop or job.patch_size)
    a.ldm_batch, a.patch = a.ldm_batch or job.ldm_batch_size, a.patch or job.patch_size
    set_threads(a.threads); device = torch.device(a.device)
    if a._child: a._child = (a._child[0], int(a._child[1]), int(a._child[2])); return child(a)
    k = a.spectral_proj; Cs = sorted(a.bands)
    if k and k >= min(Cs): raise SystemExit(f"--spectral_proj {k} must be smaller than every band count ({min(Cs)}): leave out the smaller ones, e.g. --bands {' '.join(str(C) for C in Cs if C > k) or k + 1}")
    f = 2 ** (len(job.vae_ch_mult) - 1)
    print(header(torch, f"band scaling: stage 1 at {a.size}-px crops x {a.batch}, stage 2 at {a.patch // f}-px latents x {a.ldm_batch}, "
                        f"{a.classes} classes, device {a.device}, {a.rounds} rounds after {a.warmup} warm-up"))
    res = dict(settings=dict(vars(a), _child=None, job_defaults={f: getattr(job, f) for f in ("vae_ch", "vae_ch_mult", "vae_res_blocks",
               "vae_z_channels", "vae_crop", "vae_batch_size", "patch_size", "unet_channels", "unet_channel_mult", "unet_attention",
               "ldm_batch_size", "parameterization", "snr_gamma")}),
               machine=dict(torch=torch.__version__, threads=torch.get_num_threads(), cores=cores_usable(), cpu=cpu_units(), load_start=load()))
    variants = [("plain", 0)] + ([(f"front end k={k}", k)] if k else [])

    # 1. time: every variant interleaved
    fns = {f"stage 1 image, {C} bands, {v}": synced(ImageStep(job, C, a.classes, kk, a.batch, a.size, device), device) for C in Cs for v, kk in variants}
    fns.update({f"encode, {C} bands, {v}": synced(Encode(job, C, a.classes, kk, a.ldm_batch, a.patch, device), device) for C in Cs for v, kk in variants})
    fns["stage 1 mask branch"] = synced(MaskStep(job, a.classes, a.batch, a.size, device), device)
    fns["stage 2"] = synced(LatentStep(job, a.ldm_batch, a.patch, device), device)
    t0 = time.time(); times = interleaved(fns, a.rounds, a.warmup); res["times_s"] = times
    m = {n: med(v) for n, v in times.items()}
    print(f"\ntraining-step time, median of {a.rounds} rounds ({time.time() - t0:.0f} s in all):")

    # 2. memory (fresh processes) and multiply-adds
    mem = {}
    if not a.no_memory:
        for C in Cs:
            for v, kk in variants: mem[f"image {C} {v}"] = memory(a, "image", C, kk)
        mem["mask"] = memory(a, "mask"); mem["stage2"] = memory(a, "stage2")
    res["memory"] = mem
    mc = {f"image {C} {v}": macs(st, st.forward) for C in Cs for v, kk in variants for st in [ImageStep(job, C, a.classes, kk, a.batch, a.size, device)]}
    mc["stage2"] = macs(LatentStep(job, a.ldm_batch, a.patch, device))
    res["macs"] = {n: dict(total=t, per_module=p) for n, (t, p) in mc.items()}

    mb = lambda key: (f"{mem[key]['step_mb']:7.0f} MB (peak {mem[key]['peak_rss_mb']:.0f})" if key in mem else "      -")
    rows = []
    for C in Cs:
        for v, kk in variants:
            s1, en = m[f"stage 1 image, {C} bands, {v}"], m[f"encode, {C} bands, {v}"]
            rows.append(dict(bands=C, variant=v, stage1_image_s=s1, encode_s_per_patch=en / a.ldm_batch * 8, stage1_image_gmacs=mc[f"image {C} {v}"][0] / 1e9,
                             stage1_image_memory=mem.get(f"image {C} {v}")))
            print(f"  {C:4d} bands {v:<14} stage 1 image branch {s1 * 1e3:8.1f} ms/step, {mc[f'image {C} {v}'][0] / 1e9:6.2f} GMAC, "
                  f"working set {mb(f'image {C} {v}')};  encode for stage 2 {en / a.ldm_batch * 8 * 1e3:6.2f} ms per patch (8 flips)")
    print(f"  stage 1 mask branch ({a.classes} classes, any band count): {m['stage 1 mask branch'] * 1e3:.1f} ms/step, working set {mb('mask')}")
    print(f"  stage 2 (same U-Net at every band count: {2 * job.vae_z_channels} latent channels): {m['stage 2'] * 1e3:.1f} ms/step, {mc['stage2'][0] / 1e9:.2f} GMAC, "
          f"working set {mb('stage2')}")
    res["rows"], res["stage1_mask_s"], res["stage2_s"] = rows, m["stage 1 mask branch"], m["stage 2"]

    # 3. growth with the band count
    res["growth"] = {}
    lo, hi = Cs[0], Cs[-1]
    print(f"\ngrowth from {lo} to {hi} bands (band-count ratio {hi / lo:.1f}x):")
    for v, kk in variants:
        ts = np.array([m[f"stage 1 image, {C} bands, {v}"] for C in Cs]); b, a0 = np.polyfit(Cs, ts, 1)
        r, rm = ts[-1] / ts[0], mc[f"image {hi} {v}"][0] / mc[f"image {lo} {v}"][0]
        res["growth"][v] = dict(time_ratio=r, macs_ratio=rm, band_ratio=hi / lo, fit_ms=a0 * 1e3, fit_ms_per_band=b * 1e3, band_share_at_max=b * hi / ts[-1])
        print(f"  {v:<14} stage-1 time x{r:.2f}, multiply-adds x{rm:.2f} against bands x{hi / lo:.1f}: "
              f"{'less than linear' if r < hi / lo else 'linear or more'}" + (f"; fit t = {a0 * 1e3:.1f} ms + {b * 1e3:.3f} ms/band "
              f"(the band-dependent part is {100 * b * hi / ts[-1]:.0f} % of the step at {hi} bands)" if len(Cs) > 2 else ""))
    if k: print(f"  front end k={k} against plain at {hi} bands: {m[f'stage 1 image, {hi} bands, plain'] / m[f'stage 1 image, {hi} bands, front end k={k}']:.2f}x faster")

    # 4. where the time goes at the largest band count
    res["parts"] = {}
    for v, kk in variants:
        p = parts(job, hi, kk, a, device); res["parts"][v] = p; whole = p["whole image-branch step"]
        print(f"\nwhere the time goes at {hi} bands, {v} (each part alone, forward + backward, median of {a.rounds}):")
        for n, s in p.items(): print(f"  {n:<46} {s * 1e3:8.1f} ms  {100 * s / whole:5.1f} % of the step")
        pm = mc[f"image {hi} {v}"][1]; fwd = pm.get("Global") or 1
        conv = {n.replace("Conv2d", "the 1x1 projections"): s for n, s in pm.items() if n in ("Encoder.conv_in", "Decoder.conv_out") or (kk and n == "Conv2d")}
        print("  share of the forward multiply-adds: " + ", ".join(f"{n} {100 * s / fwd:.0f} %" for n, s in sorted(conv.items())))
    res["machine"]["load_end"] = load(); print(footer())
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1, default=str) + "\n"); print(f"wrote {a.json}")

if __name__ == "__main__":
    main()
