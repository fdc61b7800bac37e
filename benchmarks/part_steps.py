"""Stage-2 training step: the joint-only U-Net (one step embedding) against the per-part one (one embedding per part,
per-part noising and loss weights), at the main job's size, timed in interleaved rounds.

    python benchmarks/part_steps.py [--task seg|change] [--rounds 5] [--steps 10]

Prints the thread count and load, the median seconds per optimizer step of each, and their ratio.
"""
import argparse, sys
from pathlib import Path

import specdm  # before torch: the thread policy
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import footer, header, interleaved, med, table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="seg", choices=["seg", "change"])
    p.add_argument("--rounds", type=int, default=5); p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=32)
    a = p.parse_args(argv)
    from specdm.core import adamw, set_threads
    from specdm.ddpm import GaussianDiffusion, UNet, UNetConfig, make_betas
    from specdm.train import part_times
    set_threads(0); print(header(torch, f"stage-2 step, {a.task}: joint-only vs per-part U-Net"), flush=True)
    split = (4, 4) if a.task == "seg" else (4, 4, 4); C, B = sum(split), a.batch_size
    cfg = dict(in_channels=C, model_channels=48, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(4,), num_head_channels=32, num_heads=1)
    gd = GaussianDiffusion(make_betas())
    def runner(parts):
        torch.manual_seed(0); net = UNet(UNetConfig(**cfg, parts=split if parts else None)); opt = adamw(net.parameters(), lr=3e-4)
        x0 = torch.randn(B, C, 16, 16)
        def run():
            for _ in range(a.steps):
                if parts:
                    tw = [part_times(len(split), 1000, (0.5, 0.3, 0.1, 0.1)) for _ in range(B)]
                    t, w = torch.stack([v[0] for v in tw]), torch.stack([v[1] for v in tw])
                    loss = gd.training_loss(net, x0, t, split=split, weight=w)
                else: loss = gd.training_loss(net, x0)
                opt.zero_grad(); loss.backward(); opt.step()
        return run
    times = interleaved({"joint-only": runner(False), "per-part": runner(True)}, a.rounds)
    print(f"seconds per optimizer step, {a.rounds} interleaved rounds of {a.steps} steps:"); print(table(times, unit="s", per=a.steps))
    print(f"per-part / joint-only step time: {med(times['per-part']) / med(times['joint-only']):.3f}"); print(footer())


if __name__ == "__main__": main()
