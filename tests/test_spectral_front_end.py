"""The opt-in spectral front end of the image branch (`VAEConfig.spectral_proj`, issue 13 item 4): checkpoints written
before it existed load unchanged, a model with it saves and loads, and the two benchmarks that measure it run (smoke
sizes: `benchmarks/band_scaling.py --quick`, `benchmarks/spectral_front_end.py` for one second)."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

from specdm.vae import AEConfig, SpectralFrontEnd, VAEConfig, build_vae, load_vae, save_vae

ROOT = Path(__file__).resolve().parents[1]

def _cfg(**kw): return VAEConfig(in_bands=24, num_classes=3, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=2, attn_mid=False), **kw)

def _batch(C=24):
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, C, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (2, 16, 16), generator=g)

def test_checkpoint_from_before_the_field_loads_unchanged(tmp_path):
    torch.manual_seed(0); vae = build_vae(_cfg()).eval(); save_vae(vae, tmp_path/"old")
    cfg = json.loads((tmp_path/"old"/"config.json").read_text()); del cfg["vae"]["spectral_proj"] # as written before the field existed
    (tmp_path/"old"/"config.json").write_text(json.dumps(cfg))
    back = load_vae(tmp_path/"old")
    assert back.config == vae.config and back.config.spectral_proj == 0 and not isinstance(back.image_ae, SpectralFrontEnd)
    assert list(back.state_dict()) == list(vae.state_dict())
    x, m = _batch()
    for a, b in zip(vae.reconstruct(x, m), back.reconstruct(x, m)): assert torch.equal(a, b)

def test_front_end_saves_and_loads(tmp_path):
    torch.manual_seed(0); vae = build_vae(_cfg(spectral_proj=6)).eval(); save_vae(vae, tmp_path/"fe")
    back = load_vae(tmp_path/"fe"); x, m = _batch()
    assert isinstance(back.image_ae, SpectralFrontEnd) and back.image_ae.proj_in.weight.shape == (6, 24, 1, 1)
    for a, b in zip(vae.reconstruct(x, m), back.reconstruct(x, m)): assert torch.equal(a, b)
    assert vae(x, m).image.shape == x.shape

def _run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout

def test_band_scaling_quick(tmp_path):
    out = _run("benchmarks/band_scaling.py", "--quick", "--no_memory", "--spectral_proj", "8", "--json", tmp_path/"b.json")
    res = json.loads((tmp_path/"b.json").read_text())
    assert [(r["bands"], r["variant"]) for r in res["rows"]] == [(10, "plain"), (10, "front end k=8"), (24, "plain"), (24, "front end k=8")]
    assert res["stage2_s"] > 0 and set(res["growth"]) == {"plain", "front end k=8"} and "where the time goes at 24 bands" in out
    assert res["macs"]["image 24 plain"]["total"] > res["macs"]["image 10 plain"]["total"] # the first and last convolutions grow with C

def test_spectral_front_end_runs(tmp_path):
    from specdm.testing import write_hyperspectral_fixture
    from specdm.prepare import prepare
    src = write_hyperspectral_fixture(tmp_path/"raw", "mat", size=64, n_bands=40, k=3)
    data = prepare("scene", tmp_path/"data", src, patch_size=16, block=32, max_invalid=1.0, unlabelled=0)
    out = _run("benchmarks/spectral_front_end.py", "--data", data, "--seconds", "1", "--spectral_proj", "8", "--batch", "4", "--checkpoints",
               "--json", tmp_path/"s.json")
    res = json.loads((tmp_path/"s.json").read_text())
    ev = {k: v["evaluations"][-1] for k, v in res["branches"].items()}
    assert set(ev) == {"plain", "front end k=8"} and all(e["steps"] >= 1 and 0 < e["rmse"] < 1 and e["sad"] > 0 for e in ev.values())
    assert "front end k=8 against plain" in out
