"""Sampler benchmark: pairs per second against the number of steps, and the quality of each, on a trained checkpoint.

    python benchmarks/samplers.py --ckpt runs/specdm/ldm [--n 128]

Quality is an interim distance until the metrics module (FID) lands: the Fréchet distance between Gaussian fits of
per-patch features of real training patches and of sampled ones. A patch's features are the mean and standard
deviation of each band (on the model's [-1, 1] scale) and the share of each class in its mask. Lower is better; the
same real set is used for every sampler, and the spread between two DDPM-1000 draws with different seeds is printed
as the noise floor of the measurement.
"""
import argparse, time
from pathlib import Path
import numpy as np
import torch
from scipy import linalg
from specdm.data import PreparedDataset
from specdm.sampling import generate, load_ldm

def features(images_norm:np.ndarray, masks:np.ndarray, K:int) -> np.ndarray:
    "Per patch: band means, band stds ([-1, 1] scale), class shares. images (N, [2,] C, H, W), masks (N, H, W)."
    x = images_norm.reshape(len(images_norm), -1, *images_norm.shape[-2:])
    shares = np.stack([(masks == k).mean((1, 2)) for k in range(K)], 1)
    return np.concatenate([x.mean((2, 3)), x.std((2, 3)), shares], 1)

def frechet(a:np.ndarray, b:np.ndarray) -> float:
    "Fréchet distance between Gaussian fits of two feature sets (rows are samples)."
    m1, m2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--ckpt", default="runs/specdm/ldm"); ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch_size", type=int, default=64); a = ap.parse_args()
    torch.manual_seed(0); m = load_ldm(a.ckpt); K = len(m.data["class_names"])
    ds = PreparedDataset(m.data["source"]); idx = ds.indices("train")[:max(a.n, 256)]
    real = features(m.normalizer.encode(np.nan_to_num(np.asarray(ds.images[idx]))), np.asarray(ds.masks[idx]).astype(int), K)
    print(f"checkpoint {m.path}; {a.n} samples per sampler; {len(idx)} real training patches; torch threads {torch.get_num_threads()}")
    print(f"{'sampler':<14}{'steps':>6}{'pairs/s':>10}{'speed-up':>10}{'FD':>10}{'FD / FD(DDPM-1000)':>20}")
    rows = []
    for name, steps, seed in [("ddpm", 1000, 0), ("ddpm", 1000, 1), ("ddim", 10, 0), ("ddim", 25, 0), ("ddim", 50, 0), ("ddim", 100, 0),
                              ("dpmpp2m", 10, 0), ("dpmpp2m", 20, 0)]:
        t = time.perf_counter(); x, y = generate(m, range(a.n), sampler=name, steps=steps, seed=seed, batch_size=a.batch_size)
        rate = a.n / (time.perf_counter() - t)
        fd = frechet(real, features(m.normalizer.encode(x.numpy()), y.numpy(), K))
        rows.append((name, steps, seed, rate, fd))
        base = rows[0]
        label = f"{name}{' (seed 1)' if seed else ''}"
        print(f"{label:<14}{steps:>6}{rate:>10.2f}{rate / base[3]:>9.1f}x{fd:>10.3f}{fd / base[4]:>20.2f}")
    print(f"noise floor: FD of two DDPM-1000 draws differs by {abs(rows[1][4] - rows[0][4]) / rows[0][4]:.1%}")
    d20 = next(r for r in rows if r[0] == "dpmpp2m" and r[1] == 20)
    print(f"DPM-Solver++ 20 steps: {d20[3] / rows[0][3]:.0f}x faster than DDPM-1000, FD {d20[4] / rows[0][4] - 1:+.1%} relative to it "
          f"(target: within 5 %)")

if __name__ == "__main__": main()
