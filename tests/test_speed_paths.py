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

# --- sampling: the VAE in channels_last (load_ldm's CPU default) gives the samples of the plain layout ---------------
import pytest
from specdm.sampling import load_ldm, sample_pairs
from specdm.testing import write_test_checkpoint

@pytest.mark.parametrize("task", ["seg", "change"])
def test_channels_last_sampling_matches_plain(tmp_path, task):
    ck = write_test_checkpoint(tmp_path/"ck", task, seed=2)
    plain, fast = load_ldm(ck, "cpu", channels_last=False), load_ldm(ck, "cpu", channels_last=True)
    assert fast.vae.image_ae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    z = torch.randn(3, *plain.latent_shape, generator=torch.Generator().manual_seed(0))
    for a, b in zip(plain.vae.decode_to_outputs(z), fast.vae.decode_to_outputs(z)): close(b, a, eps=1e-5); assert b.is_contiguous()
    p, f = sample_pairs(plain, 4, steps=4, batch_size=2), sample_pairs(fast, 4, steps=4, batch_size=2)
    close(f.images, p.images, eps=1e-2); eq(f.masks, p.masks) # images in source units (up to 3000)
