"""The one resume test of specdm's four training loops (stage 1, stage 2 joint only and per part, the downstream harness,
the spectral feature extractor), all of which checkpoint through `specdm.core.TrainingRun`: a run stopped by SIGKILL between two
checkpoints and started again ends with the same weights, optimizer state and log as a run never interrupted.

Where the kill lands is not left to timing: the killed run stalls inside one optimizer step (a global optimizer
step hook, which changes no number), says so, and is killed there, some steps after a checkpoint."""
import os, signal, subprocess, sys, textwrap
import pytest
import torch
from specdm.core import load_checkpoint, read_log, resolve_checkpoint
from specdm.prepare import prepare
from specdm.vae import AEConfig, VAEConfig, build_vae, save_vae

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SPECDM_TENSORBOARD": "0"}

STALL = textwrap.dedent('''
    import sys, time, torch
    root, run, stall_at = sys.argv[1], sys.argv[2], int(sys.argv[3]) # stall_at: optimizer step to stall in (0: never)
    _steps = [0]
    def _stall(opt, args, kwargs):
        _steps[0] += 1
        if _steps[0] == stall_at: print("STALLED", flush=True); time.sleep(600)
    from torch.optim.optimizer import register_optimizer_step_post_hook
    register_optimizer_step_post_hook(_stall)
''')

TRAIN = dict(
    stage1='''
        from specdm.data import SegmentationDataset
        from specdm.train import TrainConfig, train_vae
        from specdm.vae import AEConfig, VAEConfig, build_vae
        torch.manual_seed(0)
        model = build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, attn_mid=False)))
        train_vae(model, SegmentationDataset(root + "/data", "train", augment=True), run, val_data=SegmentationDataset(root + "/data", "val"),
                  cfg=TrainConfig(max_steps=12, batch_size=4, lr=1e-3, ckpt_every=4, log_every=1, val_every=4, val_batches=1, progress=False, cpu=True))
    ''',
    stage2='''
        from specdm.ddpm import UNetConfig
        from specdm.train import LDMTrainConfig, train_ldm
        unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
        train_ldm(root + "/vae", root + "/data", run, unet=unet, cfg=LDMTrainConfig(max_steps=12, batch_size=4, warmup_steps=2, ckpt_every=4,
                  log_every=1, progress=False, cpu=True))
    ''',
    stage2_per_part='''
        from specdm.ddpm import UNetConfig
        from specdm.train import LDMTrainConfig, train_ldm
        unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1, parts=(4, 4))
        train_ldm(root + "/vae", root + "/data", run, unet=unet, cfg=LDMTrainConfig(max_steps=12, batch_size=4, warmup_steps=2, ckpt_every=4,
                  log_every=1, progress=False, cpu=True, part_modes=(0.5, 0.3, 0.1, 0.1))) # the main job's default: per-part steps drawn per item
    ''',
    downstream='''
        from specdm.data import SegmentationDataset
        from specdm.downstream import FitConfig, SegFormer, fit
        torch.manual_seed(0)
        model = SegFormer(10, 7, hidden_sizes=(8, 16, 40, 64), depths=(1, 1, 1, 1), decoder_hidden_size=16) # dropout: the RNG matters
        fit(model, SegmentationDataset(root + "/data", "train"), SegmentationDataset(root + "/data", "val"),
            FitConfig(epochs=4, lr=3e-3, batch_size=4, patience=10), run_dir=run, seed=0, device="cpu")
    ''',
    spectral='''
        from specdm.metrics import prepared_set, train_spectral_net
        real = prepared_set(root + "/data", "train")
        train_spectral_net(real, real.normalizer, steps=12, batch_size=4, width=8, seed=0, run_dir=run, ckpt_every=4)
    ''',
)
# the optimizer step the killed run stalls in: after the checkpoint at step 4 (epoch 2 for the harness: 2 steps an epoch)
STALL_AT = dict(stage1=7, stage2=7, stage2_per_part=7, downstream=5, spectral=7)

@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    prepare("scenes", d/"data", n_scenes=4, scene_size=64, patch_size=32, val_fraction=0.5) # 8 train, 8 val patches
    torch.manual_seed(0)
    save_vae(build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, attn_mid=False))), d/"vae")
    return d

def _start(kind, root, run, stall_at=0):
    code = STALL + textwrap.dedent(TRAIN[kind])
    return subprocess.Popen([sys.executable, "-c", code, str(root), str(root/run), str(stall_at)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def _finish(p):
    out, err = p.communicate(timeout=600); assert p.returncode == 0, err[-3000:]

def _state(run):
    "Every tensor of the latest checkpoint (weights, EMA) and of its training state (optimizer, this process's RNG), and the log without times."
    folder = resolve_checkpoint(run); _, sds = load_checkpoint(folder)
    ts = torch.load(folder/"training_state.pt", weights_only=True)
    flat = {f"{n}.{k}": v for n, sd in sds.items() for k, v in sd.items()}
    flat |= {f"opt.{i}.{k}": v for i, st in ts["optimizer"]["state"].items() for k, v in st.items()} | {"rng": ts["rng"][0]["torch"]}
    log = [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in read_log(run)]
    return folder.name, flat, log

@pytest.mark.parametrize("kind", sorted(TRAIN))
def test_killed_run_resumes_to_the_uninterrupted_result(root, kind):
    _finish(_start(kind, root, f"{kind}_whole"))
    p = _start(kind, root, f"{kind}_killed", STALL_AT[kind])
    line = p.stdout.readline() # blocks until the run stalls in its optimizer step
    assert "STALLED" in line, p.stderr.read()[-3000:]
    os.kill(p.pid, signal.SIGKILL); p.wait()
    killed = root/f"{kind}_killed"
    assert (killed/"ckpt"/"latest").read_text() == ("step_0000002" if kind == "downstream" else "step_0000004")
    _finish(_start(kind, root, f"{kind}_killed")) # started again: resumes
    (na, a, la), (nb, b, lb) = _state(root/f"{kind}_whole"), _state(killed)
    assert na == nb and a.keys() == b.keys() and len(a) > 4
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    assert la == lb and len(la) > 3
