"""Stage-1 speed at hyperspectral band counts: the image loss alone, and a whole training step, before and after.

    python benchmarks/stage1_speed.py [--bands 224] [--size 64] [--batch 8] [--ch_mult 1 2] [--rounds 10] [--threads 0] [--out FILE]

"before" is stage 1 as it was when the speed work began: the image loss composed from torch operators (`(x_hat -
x).abs()` averaged, SAD through unit vectors, about ten full-size temporaries each way; copied here verbatim), torch's
plain AdamW, the VAE's attention handing 3-D strided views to `scaled_dot_product_attention` (its composed path;
`main_job_speed.attn_before`, verbatim) and the ordinary memory layout. "after" is what `specdm.train.train_vae` runs
now: `specdm.losses.image_loss` (the hand-written SAD, see nbs/02_losses.ipynb), `specdm.core.adamw` (fused where torch
has the kernel), the attention on torch's fused kernel, and the layout `specdm.core.channels_last_default` picks here.
The step is forward + backward + optimiser step of the main job's stage-1 model (two-stream VAE, base width 32, one
ResNet block per level, `--ch_mult`: `JobConfig()`'s default, 1,2 today; the paper's f = 4 is 1,2,2) on `--bands` bands,
`--size`-px patches and `--batch` images. Both variants run in alternating rounds; medians and ratios are printed, with
the threads, CPU and load, and with `--out` written to a JSON file. The losses and gradients of both are compared first
(they agree to float tolerance).
"""
import argparse, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import specdm.vae
from _timing import cpu_units, footer, header, interleaved, load, med, table, write_result
from main_job_speed import attention
from specdm.core import adamw, channels_last_default, conv_layout, set_threads
from specdm.train import JobConfig
from specdm.losses import ImageLoss, image_loss, masked_mean, to_unit
from specdm.vae import AEConfig, VAEConfig, build_vae

def sad_before(a, b, dim=1, eps=1e-8):
    "Per-pixel SAD as composed before (autograd through unit vectors)."
    u = a / torch.linalg.vector_norm(a, dim=dim, keepdim=True).clamp_min(eps)
    v = b / torch.linalg.vector_norm(b, dim=dim, keepdim=True).clamp_min(eps)
    num, den = torch.linalg.vector_norm(u - v, dim=dim), torch.linalg.vector_norm(u + v, dim=dim)
    return 2 * torch.atan2(num, torch.where((num == 0) & (den == 0), torch.ones_like(den), den))

def image_loss_before(x_hat, x, sad_weight=0.1, valid=None):
    "The image loss as composed before."
    vm = None if valid is None else valid.reshape(valid.shape[0], *([1] * (x.ndim - 4)), *valid.shape[-2:])
    l1 = masked_mean((x_hat - x).abs(), None if vm is None else vm.unsqueeze(-3))
    s = masked_mean(sad_before(to_unit(x_hat), to_unit(x), dim=-3), vm)
    return ImageLoss(l1 + sad_weight * s, l1, s)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bands", type=int, default=224); ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8); ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=10); ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ch_mult", type=int, nargs="+", default=list(JobConfig().vae_ch_mult), help="the image branch's width per level")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--out", default=None, help="write the medians and ratios to this JSON file")
    a = ap.parse_args()
    threads = set_threads(a.threads); torch.manual_seed(0); cl = channels_last_default("cpu"); start_load = load()
    print(header(torch, f"stage 1 at {a.bands} bands, {a.size} px, batch {a.batch}, ch_mult {a.ch_mult}; after: {'channels-last' if cl else 'plain'} layout"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, a.bands, a.size, a.size, generator=g) * 2 - 1
    mask = torch.randint(0, a.classes, (a.batch, a.size, a.size), generator=g)

    # 1. the loss alone, forward + backward, on a reconstruction 10 % off
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=g)).requires_grad_()
    def loss_fn(f):
        def run(): x_hat.grad = None; f(x_hat, x).loss.backward()
        return run
    res = {}
    for k, f in (("before", image_loss_before), ("after", image_loss)):
        x_hat.grad = None; l = f(x_hat, x); l.loss.backward(); res[k] = (l.loss.item(), x_hat.grad.clone())
    print(f"image loss before {res['before'][0]:.7f}, after {res['after'][0]:.7f}; largest gradient difference "
          f"{(res['before'][1] - res['after'][1]).abs().max().item():.2e} (of {res['before'][1].abs().max().item():.2e})")
    t_loss = interleaved({"loss before": loss_fn(image_loss_before), "loss after": loss_fn(image_loss)}, a.rounds, a.warmup)
    print("image loss L1 + 0.1·SAD, forward + backward:\n" + table(t_loss))

    # 2. one training step of the main job's stage-1 model
    cfg = VAEConfig(in_bands=a.bands, num_classes=a.classes, image=AEConfig(ch=32, ch_mult=tuple(a.ch_mult), num_res_blocks=1, z_channels=4))
    models = {k: build_vae(cfg) for k in ("before", "after")}
    models["after"].load_state_dict(models["before"].state_dict()); conv_layout(models["after"], channels_last=cl)
    opts = {"before": torch.optim.AdamW(models["before"].parameters(), lr=1e-4), "after": adamw(models["after"].parameters(), lr=1e-4)}
    def step_fn(k):
        m, opt, loss = models[k], opts[k], image_loss_before if k == "before" else image_loss
        def run():
            specdm.vae.image_loss = loss; attention(k == "before") # what TwoStreamVAE.forward calls
            out = m(x, mask, sample_posterior=False); opt.zero_grad(set_to_none=True); out.loss.backward(); opt.step()
        return run
    try: t = interleaved({"step before": step_fn("before"), "step after": step_fn("after")}, a.rounds, a.warmup)
    finally: specdm.vae.image_loss = image_loss; attention(False)
    print(f"stage-1 training step ({sum(p.numel() for p in models['after'].parameters()):,} parameters):\n" + table(t, unit="s"))
    print(footer())
    if a.out:
        rec = dict(command="python benchmarks/stage1_speed.py " + " ".join(sys.argv[1:]), cpu=cpu_units(), kernels=torch.backends.cpu.get_cpu_capability(),
                   torch=torch.__version__, threads=threads, channels_last=cl, bands=a.bands, size=a.size, batch=a.batch, ch_mult=a.ch_mult,
                   load_start=start_load, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"),
                   seconds=dict(loss={k.split()[-1]: med(v) for k, v in t_loss.items()}, step={k.split()[-1]: med(v) for k, v in t.items()}))
        rec["speedup"] = {k: d["before"] / d["after"] for k, d in rec["seconds"].items()}
        write_result(rec, a.out)

if __name__ == "__main__":
    main()
