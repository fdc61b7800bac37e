"""Seconds per pair of each sampling mode (DDIM-50, η = 1, with decoding), timed in interleaved rounds on one checkpoint.

    python benchmarks/mode_cost.py --ckpt runs/pp/ldm --data runs/pp/data [--n 16] [--rounds 3]

Needs a per-part checkpoint (guidance); conditions come from the prepared dataset's training split. Run it alone.
"""
import argparse, sys
from pathlib import Path

import specdm  # before torch: the thread policy
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import footer, header, interleaved, table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True); p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=16); p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    from specdm.core import set_threads
    from specdm.data import PreparedDataset
    from specdm.sampling import load_ldm, sample_pairs
    set_threads(0); m = load_ldm(a.ckpt); ds = PreparedDataset(a.data)
    print(header(torch, f"seconds per pair, DDIM-50 eta 1 with decoding, {a.n} pairs per call"), flush=True)
    f = lambda **kw: (lambda: sample_pairs(m, a.n, steps=50, eta=1.0, batch_size=a.n, **kw))
    t = interleaved({"joint": f(), "mask_to_image s=1": f(mode="mask_to_image", conditions=ds),
                     "mask_to_image s=2": f(mode="mask_to_image", conditions=ds, guidance_scale=2.0),
                     "joint_then_image s=2": f(mode="joint_then_image", guidance_scale=2.0)}, rounds=a.rounds)
    print(table(t, base="joint", unit="s", per=a.n)); print(footer())


if __name__ == "__main__": main()
