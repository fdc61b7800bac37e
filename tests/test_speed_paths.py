"Fast paths give the same results as the plain ones; the thread policy reaches fresh processes."
import os, subprocess, sys

import torch
from fastcore.test import test_close as close, test_eq as eq

from specdm.core import thread_count

def _fresh(code:str, **env) -> str:
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")} | env
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout.strip()

def test_wait_policy_in_fresh_process():
    "Importing any specdm module sets OMP_WAIT_POLICY=PASSIVE before torch loads; a user's value is kept."
    code = "import specdm.core, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    eq(_fresh(code), "PASSIVE")
    eq(_fresh(code, OMP_WAIT_POLICY="ACTIVE"), "ACTIVE")
    eq(_fresh("import specdm.train, os; print(os.environ['OMP_WAIT_POLICY'])"), "PASSIVE")

def test_thread_policy_in_fresh_process():
    "set_threads() in a fresh process: the cores it may use, or OMP_NUM_THREADS when set."
    code = "from specdm.core import set_threads, cores_available; print(set_threads(), cores_available())"
    n, cores = map(int, _fresh(code).split()); eq(n, cores)
    eq(_fresh(code, LOCAL_WORLD_SIZE=str(cores)).split()[0], "1")
    eq(_fresh(code, OMP_NUM_THREADS="1").split()[0], "1")
    eq(thread_count(cores=4, processes=2, env={}), 2)

def test_pytest_runs_one_thread():
    eq(torch.get_num_threads(), int(os.environ["OMP_NUM_THREADS"]))

# --- spectral losses: the hand-written SAD and image loss against the composition they replaced ---------------------
from specdm.losses import image_loss, masked_mean, sad, to_unit

def _sad_composed(a, b, dim=1, eps=1e-8):
    "The SAD before the hand-written gradient (autograd through torch operators), kept as the reference."
    u = a / torch.linalg.vector_norm(a, dim=dim, keepdim=True).clamp_min(eps)
    v = b / torch.linalg.vector_norm(b, dim=dim, keepdim=True).clamp_min(eps)
    num, den = torch.linalg.vector_norm(u - v, dim=dim), torch.linalg.vector_norm(u + v, dim=dim)
    return 2 * torch.atan2(num, torch.where((num == 0) & (den == 0), torch.ones_like(den), den))

def _image_loss_composed(x_hat, x, sad_weight=0.1, valid=None):
    "The image loss before (L1 + λ·SAD from full-size temporaries), kept as the reference."
    vm = None if valid is None else valid.reshape(valid.shape[0], *([1] * (x.ndim - 4)), *valid.shape[-2:])
    l1 = masked_mean((x_hat - x).abs(), None if vm is None else vm.unsqueeze(-3))
    s = masked_mean(_sad_composed(to_unit(x_hat), to_unit(x), dim=-3), vm)
    return l1 + sad_weight * s, l1, s

def _loss_and_grads(f, x_hat, x, valid):
    xh = x_hat.clone().requires_grad_(); out = f(xh, x, 0.1, valid); out[0].backward()
    return [t.detach() for t in out[:3]] + [xh.grad]

def test_image_loss_matches_composed_form_hyperspectral():
    "224 bands (EnMAP-like), a reconstruction 10 % off, with and without nodata pixels: loss terms and gradient equal."
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 224, 16, 16, generator=g) * 2 - 1
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1.2, 1.2)
    valid = torch.rand(2, 16, 16, generator=g) > 0.2
    for v in (None, valid):
        for new, ref in zip(_loss_and_grads(image_loss, x_hat, x, v), _loss_and_grads(_image_loss_composed, x_hat, x, v)):
            close(new, ref, eps=1e-6 * max(1.0, ref.abs().max().item()))

def test_sad_matches_composed_form_change_layout():
    "Per-pixel angles and both gradients on (B, 2, C, H, W), bands on axis -3."
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 2, 30, 8, 8, generator=g), torch.rand(2, 2, 30, 8, 8, generator=g)
    outs = []
    for f in (lambda x, y: sad(x, y, dim=-3, reduction="none"), lambda x, y: _sad_composed(x, y, dim=-3)):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        ang = f(x, y); (ang * torch.arange(ang.numel()).view_as(ang).float().cos()).sum().backward()
        outs.append((ang.detach(), x.grad, y.grad))
    for new, ref in zip(*outs): close(new, ref, eps=1e-5)

# --- sampling: the VAE and U-Net in channels_last (load_ldm's default on AVX-512 CPUs) give the samples of the plain layout
import pytest
from specdm.sampling import load_ldm, sample_pairs
from specdm.testing import write_test_checkpoint

@pytest.mark.parametrize("task", ["seg", "change"])
def test_channels_last_sampling_matches_plain(tmp_path, task):
    ck = write_test_checkpoint(tmp_path/"ck", task, seed=2)
    plain, fast = load_ldm(ck, "cpu", channels_last=False), load_ldm(ck, "cpu", channels_last=True)
    assert fast.vae.image_ae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.unet.input_blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    z = torch.randn(3, *plain.latent_shape, generator=torch.Generator().manual_seed(0))
    for a, b in zip(plain.vae.decode_to_outputs(z), fast.vae.decode_to_outputs(z)): close(b, a, eps=1e-5); assert b.is_contiguous()
    p, f = sample_pairs(plain, 4, steps=4, batch_size=2), sample_pairs(fast, 4, steps=4, batch_size=2)
    close(f.images, p.images, eps=1e-2); eq(f.masks, p.masks) # images in source units (up to 3000)

# --- training: channels-last weights (train_vae / train_ldm on AVX-512 CPUs) train as the plain layout does ---------
from specdm.core import read_log
from specdm.data import SegmentationDataset
from specdm.ddpm import UNetConfig
from specdm.prepare import prepare
from specdm.train import LDMTrainConfig, TrainConfig, train_ldm, train_vae
from specdm.vae import AEConfig, VAEConfig, build_vae, save_vae

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("layout")
    prepare("scenes", d/"data", n_scenes=4, scene_size=64, patch_size=32, val_fraction=0.5)
    torch.manual_seed(0); save_vae(build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4))), d/"vae")
    return d

def _losses(run): return [r["loss"] for r in read_log(run) if r.get("split") == "train"]

@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_channels_last_training_matches_plain(small, tmp_path, monkeypatch, stage):
    """The same run in both layouts logs the same loss at every step, and a run checkpointed in one layout resumes in the other.
    (The losses are the check: Adam's normalised steps turn float rounding into weight drifts of up to lr per step, as large
    as those of a wrong model in 8 steps.)"""
    unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
    def train(run, layout, steps):
        monkeypatch.setenv("SPECDM_CHANNELS_LAST", layout)
        if stage == "stage1":
            torch.manual_seed(0) # the model's initial weights (attention included: the VAE's fused-kernel path)
            model = build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4)))
            train_vae(model, SegmentationDataset(small/"data", "train", augment=True), run,
                      cfg=TrainConfig(max_steps=steps, batch_size=4, lr=1e-3, ckpt_every=4, log_every=1, val_every=100, progress=False, cpu=True))
        else:
            train_ldm(small/"vae", small/"data", run, unet=unet, cfg=LDMTrainConfig(max_steps=steps, batch_size=4, warmup_steps=2, ckpt_every=4,
                      log_every=1, progress=False, cpu=True))
    train(tmp_path/"plain", "0", 8); train(tmp_path/"fast", "1", 8)
    assert len(_losses(tmp_path/"plain")) == 8
    close(torch.tensor(_losses(tmp_path/"fast")), torch.tensor(_losses(tmp_path/"plain")), eps=1e-4)
    train(tmp_path/"mixed", "1", 4); train(tmp_path/"mixed", "0", 8) # checkpointed channels-last, resumed plain
    close(torch.tensor(_losses(tmp_path/"mixed")), torch.tensor(_losses(tmp_path/"plain")), eps=1e-4)

# --- compiled paths (opt-in): torch.compile'd networks give the eager results to float rounding ----------------------
import json
from safetensors.torch import load_file
from specdm.sampling import compiled_for_sampling, write_synthetic

def test_compiled_sampling_matches_eager(tmp_path):
    "sample_pairs(compile=True) and write_synthetic(compile=True) give the eager pairs; the manifest is the eager run's."
    ck = write_test_checkpoint(tmp_path/"ck", seed=3); m = load_ldm(ck, "cpu")
    eager, comp = sample_pairs(m, 4, steps=3, batch_size=4), sample_pairs(m, 4, steps=3, batch_size=4, compile=True)
    close(comp.images, eager.images, eps=1e-2); assert (comp.masks == eager.masks).float().mean() > 0.999
    assert not hasattr(m.unet, "_orig_mod") # the model passed in stays eager
    a, b = (write_synthetic(ck, tmp_path/k, 4, steps=3, batch_size=4, compile=c) for k, c in (("eager", False), ("compiled", True)))
    ma, mb = (json.loads((f/"manifest.json").read_text()) for f in (a, b))
    eq(ma["files"], mb["files"]); eq({k: v for k, v in ma.items() if k != "files"}, {k: v for k, v in mb.items() if k != "files"})

def test_compiled_stage2_matches_eager(small, tmp_path):
    "train_ldm with compile=True (Accelerate's inductor backend): the eager losses, checkpoints with the eager keys, resumable eager."
    unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
    cfg = lambda steps, c: LDMTrainConfig(max_steps=steps, batch_size=4, warmup_steps=2, ckpt_every=2, log_every=1, progress=False, cpu=True, compile=c)
    train_ldm(small/"vae", small/"data", tmp_path/"eager", unet=unet, cfg=cfg(4, False))
    train_ldm(small/"vae", small/"data", tmp_path/"comp", unet=unet, cfg=cfg(2, True))
    ck = tmp_path/"comp"/"ckpt"
    keys = set(load_file(next(ck.rglob("model.safetensors"))))
    assert keys and not any("_orig_mod" in k for k in keys), sorted(keys)[:3]
    train_ldm(small/"vae", small/"data", tmp_path/"comp", unet=unet, cfg=cfg(4, False)) # resumed eager
    eq(len(_losses(tmp_path/"comp")), 4)
    close(torch.tensor(_losses(tmp_path/"comp")), torch.tensor(_losses(tmp_path/"eager")), eps=1e-4)
