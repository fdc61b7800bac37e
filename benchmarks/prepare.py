"""Data-preparation benchmark: prints its figures.

1. time to prepare the eight OSCD cities (10 bands, 128 px, 60 % overlap) — needs SPECDM_DATA (or --data);
2. random-access read throughput of the prepared dataset against decoding the source GeoTIFFs per item (a ratio);
3. peak memory of `prepare` as the number of patches grows tenfold (built-in scenes; a ratio near 1 means flat).

    python benchmarks/prepare.py [--data ../shared/data] [--reads 200]
"""
import argparse, os, random, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

from specdm.data import ChangeDataset, PreparedDataset, find_band_file, oscd_label, read_band_files, _oscd_dirs
from specdm.prepare import prepare

def peak_rss_of(code:str) -> float:
    "Run `code` in a fresh Python process; return its peak resident memory in MiB."
    # VmHWM (the high-water mark of this process's own memory) is reset by exec; ru_maxrss can carry the parent's
    probe = "\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    r = subprocess.run([sys.executable, "-c", code + probe], capture_output=True, text=True, check=True)
    return int(r.stdout.split()[-1]) / 1024

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("SPECDM_DATA", str(Path(__file__).resolve().parents[2]/"shared"/"data")))
    ap.add_argument("--reads", type=int, default=200)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp()); print(f"cores: {os.cpu_count()}, numpy {np.__version__}")
    oscd = Path(a.data)/"oscd"
    if oscd.is_dir():
        t = time.perf_counter()
        ds = PreparedDataset(prepare("oscd", tmp/"oscd", oscd, bands="segmunich", patch_size=128, overlap=0.6))
        dt = time.perf_counter() - t
        print(f"[1] prepare 8 OSCD cities -> {len(ds)} patches of 2x10x128x128: {dt:.1f} s")
        cd = ChangeDataset(ds, split=None); rng = random.Random(0); idx = [rng.randrange(len(cd)) for _ in range(a.reads)]
        t = time.perf_counter()
        for i in idx: cd[i]
        fast = a.reads / (time.perf_counter() - t)
        # the alternative: decode the item's source GeoTIFFs (both dates, 10 bands resampled to 10 m) for every read
        img_dir, lab_dir = _oscd_dirs(oscd); names = [it["name"] for it in ds.meta["items"]]
        n_src = max(10, a.reads // 10); t = time.perf_counter()
        for i in idx[:n_src]:
            k, y, x, _ = ds.patches[i]; city = names[k]
            ref = find_band_file(img_dir/city/"imgs_1", "B2")
            im = np.stack([read_band_files(img_dir/city/d, "segmunich", ref) for d in ("imgs_1", "imgs_2")])[..., y:y+128, x:x+128]
            m = oscd_label(lab_dir, city)[0][y:y+128, x:x+128]
        slow = n_src / (time.perf_counter() - t)
        print(f"[2] random reads: prepared {fast:.1f} items/s, source GeoTIFFs {slow:.2f} items/s, ratio {fast/slow:.0f}x")
    else: print(f"[1,2] skipped: no OSCD folder at {oscd}")
    code = "from specdm.prepare import prepare; prepare('scenes', r'{out}', n_scenes={n}, scene_size=256, patch_size=64, overlap=0.5, checksums=False)"
    small = peak_rss_of(code.format(out=tmp/"s4", n=4)); big = peak_rss_of(code.format(out=tmp/"s40", n=40))
    n4, n40 = (PreparedDataset(tmp/f"s{n}").meta["n"] for n in (4, 40))
    print(f"[3] peak memory of prepare: {n4} patches {small:.0f} MiB, {n40} patches {big:.0f} MiB, ratio {big/small:.2f}")

if __name__ == "__main__": main()
