"""Sampling speed: pairs per second of DDIM-50 with decoding, the fast paths on and off (and, opt-in, compiled).

    python benchmarks/sampling_speed.py [--ckpt runs/specdm/ldm] [--pairs 32] [--batch 16] [--rounds 3] [--threads 0] [--compile] [--bf16]

Without `--ckpt` the model is the main job's size with random weights (speed does not depend on the weights), built
from `JobConfig()`'s defaults: today a two-stream VAE of base width 32, ch_mult 1,2 on 10 bands and 7 classes, 64-px
patches, joint latent 8 × 32 × 32 (f = 2), and the stage-2 U-Net of 32 channels, ch_mult 1,2,2,2. Variants, run in alternating rounds of `--pairs` pairs each (`specdm.sampling.generate`,
DDIM 50 steps, eta 0, decoded to source units and masks):

- `plain`: the VAE and the U-Net in the ordinary (NCHW) memory layout (`load_ldm(..., channels_last=False)`);
- `fast`: both in channels_last, as `load_ldm(..., channels_last=True)` loads them (its default on CPUs with AVX-512 kernels);
- with `--bf16`, `bf16`: the fast model sampled with `precision="bf16"` (bf16 autocast; on a CPU without bf16 units it
  runs in fp32, with a warning). Its samples are compared with the fp32 ones but are not expected to match them;
- with `--compile`, `compiled`: the fast model with `torch.compile` on the U-Net and both decoders. The first call's
  time (compilation) is printed apart, and the break-even: the number of pairs after which compiling has paid for itself.

Printed: threads and load, per-round medians, pairs/s and the speed-up over `plain`; the samples of the variants are
compared first (they agree to float rounding).
"""
import argparse, copy, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from _timing import footer, header, interleaved, med, table
from specdm.core import set_threads
from specdm.ddpm import GaussianDiffusion, UNet, UNetConfig
from specdm.sampling import LatentDiffusion, generate, load_ldm
from specdm.vae import AEConfig, VAEConfig, build_vae

def main_job_model(bands:int=10, classes:int=7, patch:int=64) -> LatentDiffusion:
    "A LatentDiffusion of the main job's size (`JobConfig()`'s defaults) with random weights, in the plain layout."
    from specdm.core import stage_config
    from specdm.train import JobConfig, diffusion_config, unet_config
    torch.manual_seed(0); job = JobConfig()
    vae = build_vae(stage_config(job, VAEConfig, image=stage_config(job, AEConfig), in_bands=bands, num_classes=classes,
                                unlabelled_class=False)).eval() # the built-in scenes label every pixel
    unet = UNet(unet_config(job, vae.latent_channels)).eval()
    data = dict(bands=[dict(name=f"B{i}") for i in range(bands)], class_names=[f"c{k}" for k in range(classes)], task="seg",
                ignore_index=255, lo=[0.0] * bands, hi=[10000.0] * bands, patch_size=patch, source="benchmark")
    f = 2 ** (len(job.vae_ch_mult) - 1) # the latent's downsampling factor
    return LatentDiffusion(vae, unet, GaussianDiffusion.from_config(diffusion_config(job)), 1.0,
                           (vae.latent_channels, patch // f, patch // f), data)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="latent-diffusion checkpoint; default: the main job's size, random weights")
    ap.add_argument("--pairs", type=int, default=32, help="pairs per round and variant")
    ap.add_argument("--batch", type=int, default=16); ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd U-Net and decoders (compiles for minutes)")
    ap.add_argument("--bf16", action="store_true", help="also time the fast model under bf16 autocast (precision='bf16')")
    a = ap.parse_args()
    set_threads(a.threads)
    print(header(torch, f"sampling: DDIM-{a.steps} with decoding, {a.pairs} pairs per round, batch {a.batch}"))
    plain = load_ldm(a.ckpt, "cpu", channels_last=False) if a.ckpt else main_job_model()
    fast = copy.copy(plain); fast.vae = copy.deepcopy(plain.vae).to(memory_format=torch.channels_last)
    fast.unet = copy.deepcopy(plain.unet).to(memory_format=torch.channels_last)
    models = {"plain": plain, "fast": fast}; precision = {}
    if a.bf16: models["bf16"] = fast; precision["bf16"] = "bf16"
    if a.compile:
        comp = copy.copy(fast); comp.unet = torch.compile(copy.deepcopy(plain.unet)); comp.vae = copy.deepcopy(fast.vae)
        for ae in (comp.vae.image_ae, comp.vae.mask_ae) if hasattr(comp.vae, "mask_ae") else (comp.vae.ae,):
            ae.decoder = torch.compile(ae.decoder)
        t0 = time.perf_counter(); generate(comp, range(a.batch), steps=a.steps, batch_size=a.batch)
        first = time.perf_counter() - t0; models["compiled"] = comp
    run = lambda k, m: (lambda: generate(m, range(a.pairs), steps=a.steps, batch_size=a.batch, precision=precision.get(k, "no")))
    ref = generate(plain, range(min(4, a.pairs)), steps=a.steps, batch_size=a.batch)
    for k, m in models.items():
        if k == "plain": continue
        x, y = generate(m, range(min(4, a.pairs)), steps=a.steps, batch_size=a.batch, precision=precision.get(k, "no"))
        print(f"{k} vs plain: largest image difference {(x - ref[0]).abs().max().item():.3g} (source units, range "
              f"{ref[0].abs().max().item():.4g}), masks equal at {(y == ref[1]).float().mean().item():.4%} of pixels")
    t = interleaved({k: run(k, m) for k, m in models.items()}, a.rounds, a.warmup)
    print(f"seconds per pair (medians over {a.rounds} rounds of {a.pairs} pairs):\n" + table(t, "plain", unit="ms", per=a.pairs))
    for k, ts in t.items(): print(f"  {k:<10} {a.pairs / med(ts):.3f} pairs/s")
    if a.compile:
        gain = (med(t["fast"]) - med(t["compiled"])) / a.pairs
        print(f"compiled: first batch {first:.1f} s (compilation included); saves {gain:.3f} s per pair over fast -> break-even "
              + (f"after {first / gain:.0f} pairs" if gain > 0 else "never (no gain)"))
    print(footer())

if __name__ == "__main__":
    main()
