"""Stage-2 training: exact resume after SIGKILL, and 2 CPU processes against 1.

On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` starts two processes that train with
DDP over gloo on the CPU (`--cpu` would start a single process); the same command uses the GPUs where there are some.
"""
import json, os, shutil, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
import torch
from specdm.core import load_checkpoint, read_log, resolve_checkpoint
from specdm.prepare import prepare
from specdm.vae import AEConfig, VAEConfig, build_vae, save_vae

SCRIPT = textwrap.dedent('''
    import sys, torch
    from specdm.ddpm import UNetConfig
    from specdm.train import LDMTrainConfig, train_ldm
    torch.set_num_threads(1)
    vae, data, run, steps, bs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
    train_ldm(vae, data, run, unet=unet, cfg=LDMTrainConfig(max_steps=steps, batch_size=bs, warmup_steps=2, ckpt_every=4,
              log_every=1, progress=False, cpu=True))
''')

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    data = prepare("scenes", d/"data", n_scenes=2, scene_size=64, patch_size=32, val_fraction=0)
    torch.manual_seed(0)
    vae = build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, attn_mid=False)))
    save_vae(vae, d/"vae")
    (d/"run.py").write_text(SCRIPT)
    return d, data

def _run(d, data, run, steps, bs, launcher=()):
    return subprocess.Popen([*launcher, str(d/"run.py"), str(d/"vae"), str(data), str(run), str(steps), str(bs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def _weights(run):
    _, sds = load_checkpoint(resolve_checkpoint(run/"ckpt"))
    return sds["model"], sds["ema"]

def test_killed_and_resumed_matches_uninterrupted(setup):
    d, data = setup
    a = _run(d, data, d/"a", 40, 4, (sys.executable,)); assert a.wait() == 0, a.stderr.read()
    b = _run(d, data, d/"b", 40, 4, (sys.executable,)); latest = d/"b"/"ckpt"/"latest"
    t0 = time.time()
    while time.time() - t0 < 120 and not (latest.is_file() and latest.read_text().strip()): time.sleep(0.01)
    os.kill(b.pid, signal.SIGKILL); b.wait()
    killed_at = latest.read_text().strip()
    assert killed_at != "step_0000040", "the run finished before it could be killed"
    c = _run(d, data, d/"b", 40, 4, (sys.executable,)); assert c.wait() == 0, c.stderr.read()
    (ma, ea), (mb, eb) = _weights(d/"a"), _weights(d/"b")
    for k in ma: assert torch.equal(ma[k], mb[k]), k
    for k in ea: assert torch.equal(ea[k], eb[k]), k
    assert [r["loss"] for r in read_log(d/"a")] == [r["loss"] for r in read_log(d/"b")]

def test_two_processes_match_one(setup):
    d, data = setup
    one = _run(d, data, d/"one", 6, 8, (sys.executable,)); assert one.wait() == 0, one.stderr.read()
    acc = Path(sys.executable).parent/"accelerate"
    two = _run(d, data, d/"two", 6, 4, (str(acc), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                         "--mixed_precision", "no", "--dynamo_backend", "no"))
    out = two.wait(); assert out == 0, two.stderr.read()
    l1, l2 = [r["loss"] for r in read_log(d/"one")], [r["loss"] for r in read_log(d/"two")]
    assert len(l1) == len(l2) == 6
    for x, y in zip(l1, l2): assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (l1, l2)
    (m1, _), (m2, _) = _weights(d/"one"), _weights(d/"two")
    assert max(float((m1[k] - m2[k]).abs().max()) for k in m1) < 1e-4

def test_configs_name_only_job_parameters():
    import yaml
    from dataclasses import fields
    from specdm.train import JobConfig
    names = {f.name for f in fields(JobConfig)}
    cfgs = sorted(f for f in (Path(__file__).parents[1]/"configs").glob("*.yaml") if not f.name.startswith("experiments_")) # those are 09_experiments' (tests/test_experiments.py)
    assert cfgs
    for f in cfgs:
        p = yaml.safe_load(f.read_text())
        assert set(p) <= names, (f.name, set(p) - names)
        JobConfig.from_params(p)  # types and choices check

def test_specdm_train_cli_smoke(tmp_path):
    "The console script runs the whole job (tiny), writes a checkpoint that sample_pairs reads, and resumes as a no-op."
    from specdm.sampling import sample_pairs
    exe = Path(sys.executable).parent/"specdm_train"
    args = [str(exe), "--run_dir", str(tmp_path/"run"), "--task", "change", "--n_scenes", "2", "--scene_size", "64",
            "--patch_size", "32", "--vae_ch", "8", "--vae_ch_mult", "1", "2", "--vae_steps", "3", "--vae_crop", "16",
            "--unet_channels", "16", "--unet_channel_mult", "1", "2", "--unet_attention", "2", "--ldm_steps", "3",
            "--ldm_batch_size", "4", "--warmup_steps", "1"]
    r = subprocess.run(args, capture_output=True, text=True); assert r.returncode == 0, r.stderr
    assert "ldm:" in r.stdout
    p = sample_pairs(tmp_path/"run"/"ldm", 3, steps=4, batch_size=2)
    assert p.images.shape == (3, 2, 10, 32, 32) and p.masks.shape == (3, 32, 32) and set(p.masks.unique().tolist()) <= {0, 1}
    r = subprocess.run(args, capture_output=True, text=True); assert r.returncode == 0, r.stderr
    bad = subprocess.run([str(exe), "--run_dir", str(tmp_path/"x"), "--task", "detect"], capture_output=True, text=True)
    assert bad.returncode != 0 and "task must be one of" in bad.stderr
