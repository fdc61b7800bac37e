"""What the opt-in compiled paths cost and gain: a stage-2 training step and DDIM-50 sampling, eager against compiled.

    python benchmarks/compile_speed.py [--rounds 7] [--pairs 32] [--batch 16] [--threads 0] [--out results/compile_speed.json]

The models are the main job's (`JobConfig()`'s defaults, random weights: speed does not depend on them; see
`sampling_speed.main_job_model`), in the memory layout `load_ldm` and `train_ldm` give them here
(`specdm.core.channels_last_default`). Timed:

- stage 2: forward + backward + AdamW step of the U-Net's v-prediction loss with min-SNR-γ 5 on a batch of
  `JobConfig().ldm_batch_size` latents, eager and through `torch.compile` (inductor, the backend `train_ldm(...,
  cfg=LDMTrainConfig(compile=True))` asks Accelerate for; `specdm_train --ldm_compile true`);
- sampling: `specdm.sampling.generate`, DDIM 50 steps, η 0, `--pairs` pairs decoded to source units and masks, with the
  model eager and as `specdm.sampling.compiled_for_sampling` gives it (`sample_pairs(..., compile=True)`).

The first compiled call is timed apart (it compiles, with a fresh inductor cache unless `--warm_cache`: a second run
would otherwise load the first one's kernels in seconds); the break-even is its extra time (the call less what the same
work costs once compiled: one step; one batch of pairs) over the per-step (per-pair) saving: the run length after which
compiling has paid for itself. Losses and samples are compared first. Variants run in
alternating rounds; medians, ratios, threads, CPU and load are printed, and with `--out` written to a JSON file
(rendered in nbs/05_train_ldm.ipynb, "Speed on the CPU").
"""
import argparse, copy, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from _timing import cpu_units, footer, header, interleaved, load, med, table, write_result
from sampling_speed import main_job_model
from specdm.core import adamw, channels_last_default, conv_layout, set_threads
from specdm.sampling import compiled_for_sampling, generate
from specdm.train import JobConfig

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per variant, alternating (sampling: half as many, at least 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (after the compiling call)")
    ap.add_argument("--pairs", type=int, default=32, help="pairs per sampling round and variant")
    ap.add_argument("--batch", type=int, default=16, help="sampling batch (the default of sample_pairs / write_synthetic)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--out", default=None, help="write the medians, ratios, compile times and break-evens to this JSON file")
    ap.add_argument("--warm_cache", action="store_true", help="use inductor's usual cache (a second run then compiles from it in seconds); default: a fresh one, as a user's first run")
    a = ap.parse_args()
    if not a.warm_cache: os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_cold_") # before anything compiles
    threads = set_threads(a.threads); torch.manual_seed(0); job = JobConfig(); cl = channels_last_default("cpu")
    print(header(torch, "the main job's stage-2 step and DDIM-50 sampling, eager and compiled (torch.compile, inductor)"))
    print(f"memory layout: {'channels-last' if cl else 'plain'} (channels_last_default('cpu'))")
    start_load = load(); m = main_job_model(); g = torch.Generator().manual_seed(0); res, first, out = {}, {}, {}

    # stage 2: v-prediction with min-SNR-gamma 5, as train_ldm computes it
    B2 = job.ldm_batch_size
    z = torch.randn(B2, *m.latent_shape, generator=g); tt = torch.randint(0, 1000, (B2,), generator=g); noise = torch.randn(z.shape, generator=g)
    eager = conv_layout(copy.deepcopy(m.unet).train(), channels_last=cl); comp_base = conv_layout(copy.deepcopy(m.unet).train(), channels_last=cl)
    nets = {"eager": eager, "compiled": torch.compile(comp_base)}
    opts = {k: adamw((comp_base if k == "compiled" else v).parameters(), lr=1e-4) for k, v in nets.items()}
    loss = lambda k: m.diffusion.training_loss(nets[k], z, tt, noise, snr_gamma=5.0)
    def step(k):
        def run(): opts[k].zero_grad(set_to_none=True); loss(k).backward(); opts[k].step()
        return run
    le = loss("eager").item(); t0 = time.perf_counter(); lc = loss("compiled"); lc.backward(); first["stage2_step"] = time.perf_counter() - t0
    opts["compiled"].zero_grad(set_to_none=True)
    print(f"stage 2: loss eager {le:.7f}, compiled {lc.item():.7f}; first compiled forward + backward {first['stage2_step']:.1f} s (compilation included)")
    res["stage2_step"] = interleaved({k: step(k) for k in nets}, a.rounds, a.warmup)
    print(f"stage-2 training step, batch {B2}:\n" + table(res["stage2_step"], "eager", unit="ms"))

    # sampling: generate() with decoding, the model eager and as compiled_for_sampling gives it
    mm = copy.copy(m); mm.vae = conv_layout(copy.deepcopy(m.vae).eval(), channels_last=cl); mm.unet = conv_layout(copy.deepcopy(m.unet).eval(), channels_last=cl)
    models = {"eager": mm, "compiled": compiled_for_sampling(mm)}
    gen = lambda k, n: generate(models[k], range(n), steps=50, batch_size=a.batch)
    t0 = time.perf_counter(); xc, yc = gen("compiled", a.batch); first["sampling"] = time.perf_counter() - t0
    xe, ye = gen("eager", a.batch)
    print(f"sampling: first compiled batch of {a.batch} {first['sampling']:.1f} s (compilation included); largest image difference "
          f"{(xc - xe).abs().max().item():.3g} (source units, range {xe.abs().max().item():.4g}), masks equal at {(yc == ye).float().mean().item():.4%} of pixels")
    t = interleaved({k: (lambda k=k: gen(k, a.pairs)) for k in models}, max(3, a.rounds // 2), a.warmup)
    res["sampling"] = {k: [v / a.pairs for v in ts] for k, ts in t.items()}
    print(f"sampling DDIM-50 with decoding, batch {a.batch}, per pair:\n" + table(t, "eager", unit="ms", per=a.pairs))

    for k, what in (("stage2_step", "steps"), ("sampling", "pairs")):
        # the first call's extra time: the compiled call's time less what the same work (one step; one batch of pairs) costs compiled
        gain = med(res[k]["eager"]) - med(res[k]["compiled"]); extra = first[k] - (a.batch if k == "sampling" else 1) * med(res[k]["compiled"])
        out[k] = dict(first_call_s=first[k], speedup=med(res[k]["eager"]) / med(res[k]["compiled"]),
                      break_even=extra / gain if gain > 0 else None)
        print(f"{k}: compiled {out[k]['speedup']:.2f}x eager; break-even after "
              + (f"{out[k]['break_even']:.0f} {what}" if gain > 0 else "never (no gain)"))
    print(footer())
    if a.out:
        rec = dict(command="python benchmarks/compile_speed.py " + " ".join(sys.argv[1:]), cpu=cpu_units(),
                   kernels=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, threads=threads, channels_last=cl,
                   load_start=start_load, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"), ldm_batch=B2, sampling_batch=a.batch,
                   inductor_cache="warm (inductor's usual cache)" if a.warm_cache else "cold (a fresh cache folder)",
                   seconds={k: {v: med(ts) for v, ts in d.items()} for k, d in res.items()}, **out)
        write_result(rec, a.out)

if __name__ == "__main__":
    main()
