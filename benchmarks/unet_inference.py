"""The stage-2 U-Net's inference step in fp32 through the CPU inference paths PyTorch offers, against the plain model.

    python benchmarks/unet_inference.py [--batch 16] [--rounds 10] [--threads 0] [--compile] [--out results/unet_inference.json]

DDIM-50 with decoding calls the U-Net 50 times per batch and the decoders once, so the U-Net's speed-up bounds the
sampling's: a path that makes sampling 1.4× faster in fp32 must make the U-Net more than 1.4× faster. This script times
one U-Net call (the main job's U-Net, `JobConfig()`'s defaults with random weights, a batch of joint latents at one
diffusion step) in each of:

- `plain`: the module as `UNet` builds it (NCHW);
- `channels_last`: the same weights in channels_last, as `load_ldm` loads them on CPUs with AVX-512 kernels;
- `jit_freeze`: `torch.jit.trace`, then `torch.jit.freeze` (weights folded into the graph as constants) — TorchScript's
  inference path;
- `jit_onednn`: the same with `torch.jit.enable_onednn_fusion(True)`, oneDNN Graph's fused CPU kernels;
- with `--compile`, `compiled`: `torch.compile` (inductor), as `compiled_for_sampling` uses; its first call (the
  compilation, with a fresh inductor cache) is printed apart.

Each variant's output is compared with `plain`'s first (they agree to float rounding), then the variants are timed in
alternating rounds (A B C D A B C D …) and the medians and ratios printed. The thread count and load are printed too.
"""
import argparse, copy, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from _timing import cpu_units, footer, header, interleaved, load, med, table, write_result
from specdm.core import set_threads
from sampling_speed import main_job_model

def traced(unet, x, t, onednn:bool):
    "`unet` traced at (x, t) and frozen, with oneDNN Graph fusion on or off; returns the frozen module and the seconds it took (two warm-up calls included: TorchScript optimises at the first calls)."
    torch.jit.enable_onednn_fusion(onednn)
    t0 = time.perf_counter()
    with torch.no_grad():
        m = torch.jit.freeze(torch.jit.trace(copy.deepcopy(unet), (x, t), check_trace=False).eval())
        for _ in range(2): m(x, t)
    return m, time.perf_counter() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16, help="latents per call (sample_pairs' default batch)")
    ap.add_argument("--rounds", type=int, default=10); ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: specdm's policy (usable cores / local processes)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (inductor; compiles for a minute or more)")
    ap.add_argument("--out", default=None, help="write the medians and ratios to this JSON file")
    a = ap.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_cold_") # --compile: a user's first compilation, not the cache's
    threads = set_threads(a.threads)
    print(header(torch, f"the main job's U-Net, one fp32 inference call on {a.batch} latents"))
    start_load = load(); torch.manual_seed(0)
    m = main_job_model(); unet = m.unet.eval()
    for p in unet.parameters(): p.data.normal_(0, 0.05) # random weights everywhere (the output conv starts at zero)
    x = torch.randn(a.batch, *m.latent_shape); t = torch.full((a.batch,), 500)
    nets = {"plain": unet, "channels_last": copy.deepcopy(unet).to(memory_format=torch.channels_last)}
    prep = {}
    nets["jit_freeze"], prep["jit_freeze"] = traced(unet, x, t, onednn=False)
    nets["jit_onednn"], prep["jit_onednn"] = traced(unet, x, t, onednn=True)
    if a.compile:
        c = torch.compile(copy.deepcopy(unet)); t0 = time.perf_counter()
        with torch.inference_mode(): c(x, t)
        nets["compiled"], prep["compiled"] = c, time.perf_counter() - t0
    with torch.inference_mode():
        ref = unet(x, t); diffs = {}
        for k, n in nets.items():
            if k == "plain": continue
            torch.jit.enable_onednn_fusion(k == "jit_onednn")
            diffs[k] = float((n(x, t) - ref).abs().max() / ref.abs().max())
            print(f"{k} vs plain: largest difference {diffs[k]:.2e} of the output's range" + (f"; prepared in {prep[k]:.1f} s" if k in prep else ""))
    def call(k):
        def run():
            torch.jit.enable_onednn_fusion(k == "jit_onednn")
            with torch.inference_mode(): nets[k](x, t)
        return run
    times = interleaved({k: call(k) for k in nets}, a.rounds, a.warmup)
    print(f"seconds per call (medians over {a.rounds} rounds):\n" + table(times, "plain", unit="ms"))
    print(footer())
    if a.out:
        write_result(dict(command="python benchmarks/unet_inference.py " + " ".join(sys.argv[1:]), threads=threads, batch=a.batch,
                          cpu=cpu_units(), kernels=torch.backends.cpu.get_cpu_capability(), created=time.strftime("%Y-%m-%d %H:%M"), load_start=start_load, load_end=load(), torch=torch.__version__,
                          seconds=dict((k, med(v)) for k, v in times.items()), speedup={k: med(times["plain"]) / med(v) for k, v in times.items()},
                          prepare_seconds=prep, relative_difference=diffs), a.out)

if __name__ == "__main__":
    main()
