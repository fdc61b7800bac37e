"""Dark tile edges (issue 12, item 6): the encoders' bottom/right pad (`AEConfig.downsample_pad`) and the benchmark that
measures edge brightness (`benchmarks/edges.py`)."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import torch

from specdm.prepare import prepare
from specdm.sampling import write_synthetic
from specdm.testing import write_test_checkpoint
from specdm.vae import AEConfig, VAEConfig, build_vae, load_vae, save_vae

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/"benchmarks"))
from edges import edge_ratios

def _cfg(pad="zeros"): return VAEConfig(in_bands=4, num_classes=3, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_mid=False, downsample_pad=pad))

def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 4, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (2, 16, 16), generator=g)

def test_checkpoint_from_before_the_field_loads_with_zeros(tmp_path):
    torch.manual_seed(0); vae = build_vae(_cfg()).eval(); save_vae(vae, tmp_path/"old")
    cfg = json.loads((tmp_path/"old"/"config.json").read_text())
    for branch in ("image", "mask"): del cfg["vae"][branch]["downsample_pad"] # as written before the field existed
    (tmp_path/"old"/"config.json").write_text(json.dumps(cfg))
    back = load_vae(tmp_path/"old"); x, m = _batch()
    assert back.config == vae.config and back.config.image.downsample_pad == back.config.mask.downsample_pad == "zeros"
    for a, b in zip(vae.reconstruct(x, m), back.reconstruct(x, m)): assert torch.equal(a, b)

def test_replicate_pad_is_saved_and_changes_only_the_encoding():
    torch.manual_seed(0); z = build_vae(_cfg()).eval()
    r = build_vae(_cfg("replicate")).eval(); r.load_state_dict(z.state_dict()) # same weights
    assert r.config.mask.downsample_pad == "replicate" # the mask branch follows the image branch
    x, m = _batch(); ez, er = z.encode(x, m), r.encode(x, m)
    assert not torch.equal(ez, er) # (GroupNorm's statistics carry the edge change to every latent pixel; `Downsample`'s own test in 03 shows it is the last row and column)
    assert torch.equal(z.decode_to_outputs(ez)[0], r.decode_to_outputs(ez)[0]) # decoders are unchanged

def test_edge_ratios():
    a = np.ones((2, 3, 16, 16)); a[..., -2:, :] = 0.5 # the bottom two rows half as bright
    r = edge_ratios(a, 2)
    assert r["bottom"] == 0.5 and r["top"] == 1.0 and r["left"] == r["right"] == (14 + 2 * 0.5) / 16
    assert r["frame"] < 1

def test_edges_script(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck", "seg", 16)
    data = prepare("folder", tmp_path/"data", src=write_synthetic(ck, tmp_path/"raw", 8, steps=2), bands="rgbn", patch_size=16, val_fraction=0.5,
                   class_names="water,land,road") # the model's own samples: its bands and classes
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "benchmarks/edges.py", "--ldm", str(ck), "--data", str(data), "--n", "4", "--out", str(tmp_path/"e.json")],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path/"e.json").read_text())
    assert out["n"] == 4 and set(out["real"]) == {"frame", "top", "bottom", "left", "right"}
    assert out["models"][0]["downsample_pad"] == ["zeros"] and all(np.isfinite(v) for v in out["models"][0]["joint"].values())
    assert "VAE reconstructions" in r.stdout
