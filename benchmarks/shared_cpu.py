"""Two main-job-sized stage-2 trainings at once on this CPU, against one alone: what the thread policy is for.

    python benchmarks/shared_cpu.py [--steps 20] [--rounds 2] [--modes policy passive before] [--warmup 2] [--out FILE]

Each training is its own process (this script with `--worker`): the stage-2 U-Net of the main job (`05_train_ldm`'s
defaults: 48 channels, channel_mult 1,2,2, one ResNet block per level, attention at 4× downsampling; 2.7 M parameters)
on the main job's joint latent (8 × 16 × 16, batch 32), `--steps` optimiser steps of the diffusion loss, backward,
gradient clipping and AdamW, each step timed. Modes:

- `policy`: as specdm runs now. `OMP_WAIT_POLICY=PASSIVE` with `GOMP_SPINCOUNT=3000` (waiting threads spin 3 000
  rounds, then sleep; both set by `import specdm` before torch loads), threads from `specdm.core.set_threads()` — each
  job takes the cores it may use, since two independent jobs do not know of each other — and AdamW from
  `specdm.core.adamw` (fused).
- `passive`: the policy with `OMP_WAIT_POLICY=PASSIVE` alone (waiting threads sleep at once): specdm's policy until
  the spin count was measured.
- `before`: as before the policy: torch loaded before specdm (OpenMP's default waiting policy, threads spin), torch's
  default threads, plain AdamW.
- `spin=K` (optional, e.g. `spin=10000`): the policy with another spin count, K rounds before waiting threads sleep
  (`GOMP_SPINCOUNT=K`, libgomp, the OpenMP of torch's Linux wheels).

For each mode the rounds alternate: one training alone, then two at once, then alone again (`--rounds` times). The
environment's OMP_WAIT_POLICY / OMP_NUM_THREADS are removed from the workers so that each mode decides. Printed: the
threads and load, per-step medians (after `--warmup` steps of each process), and the ratios two-at-once / alone
(the aim: each within 2.5× of one alone; spinning threads made it ~17×) and alone before / alone policy (the aim:
one alone no slower than before).
"""
import argparse, json, os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import cpu_units, cores_usable, load, write_result

def worker(mode:str, steps:int, seed:int):
    "One training: print a JSON line with its threads, waiting policy (as OpenMP saw it at start) and per-step seconds."
    given = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if mode == "before": import torch # OpenMP starts before specdm can set its waiting policy: the behaviour before
    import specdm # noqa: F401  (other modes: sets the waiting policy before torch loads)
    wait = "(unset)" if mode == "before" else ", ".join(f"{k}={os.environ[k]}" + ("" if given[k] else " (from specdm)")
                                                        for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ)
    import torch
    from specdm.core import adamw, set_threads
    from specdm.ddpm import DiffusionConfig, GaussianDiffusion, UNet, UNetConfig
    if mode != "before": set_threads()
    torch.manual_seed(seed)
    net = UNet(UNetConfig(in_channels=8, model_channels=48, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(4,),
                          num_head_channels=32, num_heads=1))
    opt = adamw(net.parameters(), lr=3e-4) if mode != "before" else torch.optim.AdamW(net.parameters(), lr=3e-4)
    process = GaussianDiffusion.from_config(DiffusionConfig()); times = []
    for _ in range(steps):
        z, t, noise = torch.randn(32, 8, 16, 16), torch.randint(0, 1000, (32,)), torch.randn(32, 8, 16, 16)
        t0 = time.perf_counter()
        loss = process.training_loss(net, z, t, noise); opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(dict(threads=torch.get_num_threads(), wait=wait, times=times)))

def run(mode:str, n:int, steps:int) -> list[dict]:
    "Start `n` workers at once, wait for all; their reports."
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    if mode.startswith("spin="): env["GOMP_SPINCOUNT"] = mode.split("=", 1)[1]
    if mode == "passive": env["OMP_WAIT_POLICY"] = "PASSIVE" # set by the user: specdm adds no spin count
    ps = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", mode, "--steps", str(steps), "--seed", str(i)],
                           stdout=subprocess.PIPE, text=True, env=env) for i in range(n)]
    out = [p.communicate()[0] for p in ps]
    if any(p.returncode for p in ps): raise SystemExit(f"a {mode} worker failed")
    return [json.loads(o.strip().splitlines()[-1]) for o in out]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="optimiser steps per training")
    ap.add_argument("--warmup", type=int, default=2, help="first steps of each training not counted")
    ap.add_argument("--rounds", type=int, default=2, help="alone / two-at-once rounds per mode (alternating)")
    ap.add_argument("--modes", nargs="+", default=["policy", "passive", "before"], help="policy, passive, before, spin=K (see above)")
    ap.add_argument("--out", default=None, help="write the per-mode medians and ratios to this JSON file (rendered in nbs/00_core.ipynb)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.steps, a.seed)
    if a.steps <= a.warmup: raise SystemExit("--steps must exceed --warmup")
    if bad := [m for m in a.modes if m not in ("policy", "passive", "before") and not (m.startswith("spin=") and m[5:].isdigit())]:
        raise SystemExit(f"unknown modes {bad}: use policy, passive, before, spin=K")
    print(f"two main-job-sized stage-2 trainings at once vs one alone, {a.steps} steps each ({a.warmup} not counted)\n"
          f"CPU: {cpu_units()}, {cores_usable()} usable cores\nat the start: {load()}"); start = load(); summary = {}
    res = {m: {"alone": [], "two": []} for m in a.modes}; threads = {}
    for r in range(a.rounds): # alone, two at once, alone, two at once ... per mode, modes interleaved too
        for m in a.modes:
            for kind, n in (("alone", 1), ("two", 2)):
                reps = run(m, n, a.steps); threads[m] = (reps[0]["threads"], reps[0]["wait"])
                res[m][kind].append([statistics.median(rep["times"][a.warmup:]) for rep in reps])
                print(f"  round {r + 1} {m:<10} {kind:<5}: per-step median " + ", ".join(f"{x:.3f} s" for x in res[m][kind][-1]) + f"   ({load()})", flush=True)
    print("summary (medians over rounds):")
    alone = {}
    for m in a.modes:
        alone[m] = statistics.median(x for rnd in res[m]["alone"] for x in rnd)
        two = [statistics.median(rnd[i] for rnd in res[m]["two"]) for i in range(2)]
        print(f"  {m:<10} ({threads[m][0]} threads per process; {threads[m][1]}): one alone {alone[m]:.3f} s/step; "
              f"two at once {two[0]:.3f} and {two[1]:.3f} s/step = {two[0] / alone[m]:.2f}x and {two[1] / alone[m]:.2f}x of one alone "
              f"({'within' if max(two) <= 2.5 * alone[m] else 'NOT within'} 2.5x)")
        summary[m] = dict(threads=threads[m][0], waiting=threads[m][1], alone=alone[m], two=two, two_vs_alone=[x / alone[m] for x in two])
    if {"policy", "before"} <= set(a.modes):
        for m in a.modes:
            if m != "before": print(f"  one alone, before / {m}: {alone['before'] / alone[m]:.2f} (>= 1: {m} is no slower alone than before)")
    print(f"at the end: {load()}")
    if a.out:
        rec = dict(command="python benchmarks/shared_cpu.py " + " ".join(sys.argv[1:]), cpu=cpu_units(), cores=cores_usable(), steps=a.steps,
                   rounds=a.rounds, load_start=start, load_end=load(), created=time.strftime("%Y-%m-%d %H:%M"), modes=summary)
        write_result(rec, a.out)

if __name__ == "__main__":
    main()
