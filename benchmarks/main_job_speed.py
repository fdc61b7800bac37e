"""The main job's three costs before and after the speed changes: a stage-1 step, a stage-2 step, and DDIM sampling.

    python benchmarks/main_job_speed.py [--rounds 7] [--pairs 32] [--batch 16] [--threads 0] [--out results/main_job_speed.json]

The models are the main job's (`JobConfig()`'s defaults, random weights: speed does not depend on them): the two-stream
VAE (10 bands, 7 classes, 64-px patches, base width 32, ch_mult 1,2) and the stage-2 U-Net (32 channels, ch_mult
1,2,2,2) over its 8 × 32 × 32 joint latent. The changes:

- the VAE's attention block handing `scaled_dot_product_attention` 4-D inputs with contiguous channels, so torch's
  fused CPU kernel runs (before: 3-D strided views, which fell back to the plain composition; `before` below runs that
  forward, copied verbatim);
- the weights in channels-last memory (`specdm.core.conv_layout`, what `train_ldm` and `load_ldm` do where
  `specdm.core.channels_last_default` says so; `plain` is the ordinary layout).

Timed:

- stage 1: forward + backward + AdamW step of the VAE on a batch of `JobConfig().vae_batch_size` (16) patches, with its
  real loss (L1 + 0.1 SAD and cross-entropy + KL), as `train_vae` runs it;
- stage 2: the same for the U-Net's v-prediction loss with min-SNR-γ 5 on a batch of `ldm_batch_size` (32) latents;
- sampling: `specdm.sampling.generate`, DDIM 50 steps, η 0, `--pairs` pairs decoded to source units and masks, in
  batches of `--batch` (and of 64, to show what the batch size does).

All variants start from the same weights and inputs; their losses, gradients and samples are compared first (they agree
to float rounding). Variants run in alternating rounds; medians and ratios are printed with the threads, CPU and load,
and with `--out` written to a JSON file (rendered in nbs/05_train_ldm.ipynb, "Speed on the CPU").
"""
import argparse, copy, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from _timing import cpu_units, footer, header, interleaved, load, med, table, write_result
from sampling_speed import main_job_model
from specdm.core import adamw, channels_last_default, conv_layout, set_threads
from specdm.sampling import generate
from specdm.train import JobConfig
import specdm.vae
import torch.nn.functional as F

def attn_before(self, x):
    "specdm.vae.AttnBlock.forward before (3-D strided inputs: the plain composition ran), verbatim."
    B, C, H, W = x.shape
    q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1) # (B, HW, C) each
    h = F.scaled_dot_product_attention(q, k, v) # softmax(q kᵀ / √C) v
    return x + self.proj(h.transpose(1, 2).reshape(B, C, H, W))
ATTN_AFTER = specdm.vae.AttnBlock.forward

def attention(before:bool):
    "Put the VAE's attention forward of before or of now in place."
    specdm.vae.AttnBlock.forward = attn_before if before else ATTN_AFTER

def variants(model, spec:dict):
    "Copies of `model` with the same weights, one per variant: {name: channels_last}."
    return {k: conv_layout(copy.deepcopy(model), channels_last=cl) for k, cl in spec.items()}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per variant, alternating (sampling: half as many, at least 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--pairs", type=int, default=32, help="pairs per sampling round and variant")
    ap.add_argument("--batch", type=int, default=16, help="sampling batch (the default of sample_pairs / write_synthetic); batch 64 is timed as well")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--out", default=None, help="write the medians and ratios to this JSON file")
    a = ap.parse_args()
    threads = set_threads(a.threads); torch.manual_seed(0); job = JobConfig()
    print(header(torch, "the main job's stage-1 step, stage-2 step and DDIM-50 sampling, before and after"))
    print(f"channels_last_default('cpu') here: {channels_last_default('cpu')}")
    start_load = load(); m = main_job_model(); g = torch.Generator().manual_seed(0); res = {}
    is_before = lambda k: k.startswith("before")

    # stage 1: the VAE's own loss, as train_vae computes it
    B1, P = job.vae_batch_size, 64
    x = torch.rand(B1, 10, P, P, generator=g) * 2 - 1; y = torch.randint(0, 7, (B1, P, P), generator=g)
    vaes = variants(m.vae.train(), {"before": False, "after, plain": False, "after, channels-last": True})
    opts = {k: adamw(v.parameters(), lr=1e-4) for k, v in vaes.items()}
    def vae_loss(k): attention(is_before(k)); torch.manual_seed(1); return vaes[k](x, y, sample_posterior=True).loss
    l = {k: vae_loss(k) for k in vaes}; [v.backward() for v in l.values()]
    grads = {k: [p.grad for p in v.parameters()] for k, v in vaes.items()}
    for k in list(vaes)[1:]:
        gd = max((p - q).abs().max().item() for p, q in zip(grads["before"], grads[k]) if p is not None)
        print(f"stage 1, {k}: loss {l[k].item():.7f} (before {l['before'].item():.7f}); largest gradient difference from before {gd:.2e}")
    def s1(k):
        def run(): opts[k].zero_grad(set_to_none=True); vae_loss(k).backward(); opts[k].step()
        return run
    t = interleaved({k: s1(k) for k in vaes}, a.rounds, a.warmup); attention(False)
    print(f"stage-1 training step, batch {B1}:\n" + table(t, "before", unit="ms")); res["stage1_step"] = t

    # stage 2: v-prediction with min-SNR-gamma 5, as train_ldm computes it (its attention is the U-Net's, unchanged)
    B2 = job.ldm_batch_size
    z = torch.randn(B2, *m.latent_shape, generator=g); tt = torch.randint(0, 1000, (B2,), generator=g); noise = torch.randn(z.shape, generator=g)
    unets = variants(m.unet.train(), {"before": False, "after, channels-last": True}); opts2 = {k: adamw(v.parameters(), lr=1e-4) for k, v in unets.items()}
    loss2 = lambda k: m.diffusion.training_loss(unets[k], z, tt, noise, snr_gamma=5.0)
    l = {k: loss2(k) for k in unets}
    print(f"stage 2: loss before {l['before'].item():.7f}, after {l['after, channels-last'].item():.7f}")
    def s2(k):
        def run(): opts2[k].zero_grad(set_to_none=True); loss2(k).backward(); opts2[k].step()
        return run
    t = interleaved({k: s2(k) for k in unets}, a.rounds, a.warmup)
    print(f"stage-2 training step, batch {B2}:\n" + table(t, "before", unit="ms")); res["stage2_step"] = t

    # sampling: generate() with decoding; after = what load_ldm gives here
    m.vae.eval(); m.unet.eval(); models = {}
    for k, cl in (("before", False), ("after", channels_last_default("cpu"))):
        mm = copy.copy(m); mm.vae = conv_layout(copy.deepcopy(m.vae), channels_last=cl); mm.unet = conv_layout(copy.deepcopy(m.unet), channels_last=cl); models[k] = mm
    gen = lambda k, n, b=16: (attention(is_before(k)), generate(models[k], range(n), steps=50, batch_size=b))[1]
    (x0, y0), (x1, y1) = gen("before", 4), gen("after", 4)
    print(f"sampling: largest image difference {(x1 - x0).abs().max().item():.3g} (source units, range {x0.abs().max().item():.4g}), "
          f"masks equal at {(y1 == y0).float().mean().item():.4%} of pixels")
    for b in dict.fromkeys((a.batch, 64)):
        t = interleaved({k: (lambda k=k, b=b: gen(k, a.pairs, b)) for k in models}, max(3, a.rounds // 2), a.warmup)
        print(f"sampling DDIM-50 with decoding, batch {b}, per pair:\n" + table(t, "before", unit="ms", per=a.pairs))
        for k, ts in t.items(): print(f"  {k:<14} {a.pairs / med(ts):.3f} pairs/s")
        res[f"sampling_batch{b}"] = {k: [v / a.pairs for v in ts] for k, ts in t.items()}
    attention(False); print(footer())
    if a.out:
        out = dict(command="python benchmarks/main_job_speed.py " + " ".join(sys.argv[1:]), cpu=cpu_units(),
                   kernels=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, threads=threads,
                   load_start=start_load, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"),
                   seconds={k: {v: med(ts) for v, ts in d.items()} for k, d in res.items()},
                   speedup={k: {v: med(d["before"]) / med(ts) for v, ts in d.items() if v != "before"} for k, d in res.items()})
        write_result(out, a.out)

if __name__ == "__main__":
    main()
