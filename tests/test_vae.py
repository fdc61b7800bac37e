"Stage-1 VAE checkpoints across processes: bit-identical reload, truncated/killed saves (exact resume after SIGKILL: tests/test_resume.py)."
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from specdm.core import CheckpointError
from specdm.vae import load_vae, resolve_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} # every process alike, and no oversubscription

# A tiny change-detection run on the OSCD-layout fixture (augmentation on), driven by argv: root, run folder, steps.
TRAIN = textwrap.dedent('''
    import sys, torch
    from pathlib import Path
    from specdm.data import ChangeDataset, PreparedDataset, oscd_items, prepare_dataset
    from specdm.testing import write_oscd_fixture
    from specdm.train import TrainConfig, train_vae
    from specdm.vae import AEConfig, VAEConfig, build_vae
    root, run, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    if not (root/"ds"/"dataset.json").is_file():
        write_oscd_fixture(root/"raw", cities=("alpha", "beta"), size=64)
        prepare_dataset(oscd_items(root/"raw", bands="segmunich", val_cities=["beta"]), root/"ds", task="change", bands="segmunich",
                        class_names=["no change", "change"], patch_size=16, overlap=0.5, checksums=False)
    ds = PreparedDataset(root/"ds")
    torch.manual_seed(0)
    model = build_vae(VAEConfig(in_bands=10, num_classes=2, task="change",
                                image=AEConfig(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=3, attn_mid=True)))
    cfg = TrainConfig(max_steps=steps, batch_size=4, lr=1e-3, ckpt_every=int(sys.argv[4]) if len(sys.argv) > 4 else 5, log_every=5,
                      val_every=10, val_batches=1, keep_last=3, progress=False)
    train_vae(model, ChangeDataset(ds, "train", augment=True), run, cfg=cfg, val_data=ChangeDataset(ds, "val"))
''')

def _train(tmp:Path, run:str, steps:int, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(tmp), str(tmp/run), str(steps), *map(str, extra)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def _run(tmp:Path, run:str, steps:int, *extra):
    p = _train(tmp, run, steps, *extra); out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]

def test_reload_in_fresh_process_is_bit_identical(tmp_path):
    _run(tmp_path, "run", 4, 2)
    model = load_vae(tmp_path/"run")
    g = torch.Generator().manual_seed(1)
    image, mask = torch.rand(3, 2, 10, 16, 16, generator=g) * 2 - 1, torch.randint(0, 2, (3, 16, 16), generator=g)
    save_file({"image": image, "mask": mask}, tmp_path/"in.safetensors")
    code = textwrap.dedent(f'''
        from safetensors.torch import load_file, save_file
        from specdm.vae import load_vae
        d = load_file({str(tmp_path/"in.safetensors")!r}); m = load_vae({str(tmp_path/"run")!r})
        x, logits = m.reconstruct(d["image"], d["mask"]); z = m.encode(d["image"], d["mask"])
        save_file({{"x": x, "logits": logits, "z": z.detach()}}, {str(tmp_path/"out.safetensors")!r})
    ''')
    r = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True); assert r.returncode == 0, r.stderr
    other = load_file(tmp_path/"out.safetensors")
    n = torch.get_num_threads(); torch.set_num_threads(1) # as in the other process: CPU kernels split sums by thread
    try:
        x, logits = model.reconstruct(image, mask)
        with torch.no_grad(): z = model.encode(image, mask)
    finally: torch.set_num_threads(n)
    assert torch.equal(other["x"], x) and torch.equal(other["logits"], logits) and torch.equal(other["z"], z)

def test_truncated_checkpoint_is_named_and_previous_survives(tmp_path):
    _run(tmp_path, "run", 4, 2)
    ck = tmp_path/"run"/"ckpt"
    assert (ck/"latest").read_text() == "step_0000004" and (ck/"step_0000002").is_dir()
    good = load_vae(ck/"step_0000002")
    # truncate the newest weights: loading names the file
    f = ck/"step_0000004"/"model.safetensors"; f.write_bytes(f.read_bytes()[:f.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="step_0000004/model.safetensors"): load_vae(tmp_path/"run")
    # a truncated training state is named when resuming
    t = ck/"step_0000002"/"training_state.pt"; (ck/"latest").write_text("step_0000002")
    t.write_bytes(t.read_bytes()[:100])
    p = _train(tmp_path, "run", 6, 2); _, err = p.communicate(timeout=300)
    assert p.returncode != 0 and "step_0000002/training_state.pt" in err and "CheckpointError" in err
    # the weights of the untouched checkpoint still load, identically
    again = load_vae(ck/"step_0000002")
    assert all(torch.equal(a, b) for a, b in zip(good.state_dict().values(), again.state_dict().values()))

SLOW_SAVE = textwrap.dedent('''
    import sys, time, specdm.vae as v
    orig = v.save_checkpoint
    def slow(folder, sds, config):
        if config.get("step", 0) >= 4: # the second checkpoint: weights written into the staging folder, then stall
            from specdm.core import save_tensors
            save_tensors(sds["model"], folder/"model.safetensors"); print("STALLED", flush=True); time.sleep(600)
        return orig(folder, sds, config)
    v.save_checkpoint = slow
''')

def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    code = SLOW_SAVE + TRAIN
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(tmp_path/"run"), "6", "2"], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline() # blocks until the save stalls
    assert "STALLED" in line, p.stderr.read()[-3000:]
    os.kill(p.pid, signal.SIGKILL); p.wait()
    ck = tmp_path/"run"/"ckpt"
    assert (ck/"latest").read_text() == "step_0000002" and not (ck/"step_0000004").exists()
    assert list(ck.glob(".step_0000004.partial-*")) # the half-written checkpoint is only a hidden staging folder
    load_vae(tmp_path/"run") # the previous one loads
    _run(tmp_path, "run", 6, 2) # and the run resumes from it and cleans up
    assert (ck/"latest").read_text() == "step_0000006" and not list(ck.glob(".step_*"))

def test_resolve_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"): resolve_checkpoint(tmp_path)
    (tmp_path/"latest").write_text("step_0000099")
    with pytest.raises(CheckpointError, match="step_0000099"): resolve_checkpoint(tmp_path)

DDP = textwrap.dedent('''
    import sys, torch
    from pathlib import Path
    from accelerate import notebook_launcher
    from torch.utils.data import Dataset
    from specdm.train import TrainConfig, train_vae
    from specdm.vae import AEConfig, VAEConfig, build_vae
    class Pairs(Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.x, self.y = torch.rand(n, 2, 4, 16, 16, generator=g) * 2 - 1, torch.randint(0, 2, (n, 16, 16), generator=g)
        def __len__(self): return len(self.x)
        def __getitem__(self, i): return self.x[i], self.y[i]
    def main():
        torch.manual_seed(0)
        m = build_vae(VAEConfig(in_bands=4, num_classes=2, task="change", image=AEConfig(ch=8, num_res_blocks=1, z_channels=2)))
        train_vae(m, Pairs(24), sys.argv[1], val_data=Pairs(4), cfg=TrainConfig(max_steps=int(sys.argv[2]), batch_size=2, lr=1e-3,
                  ckpt_every=3, log_every=3, val_every=3, cpu=True, progress=False))
    notebook_launcher(main, num_processes=2)
''')

def test_two_process_ddp_training_resumes_exactly(tmp_path):
    "The same train_vae under DDP with 2 CPU processes (notebook_launcher): checkpoints, and an exact resume."
    def run(folder, steps):
        r = subprocess.run([sys.executable, "-c", DDP, str(tmp_path/folder), str(steps)], env=ENV, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    run("whole", 9); run("split", 6); run("split", 9)
    a, b = (load_file(tmp_path/f/"ckpt"/"step_0000009"/"model.safetensors") for f in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(torch.load(tmp_path/"whole"/"ckpt"/"step_0000009"/"training_state.pt", weights_only=True)["rng"]) == 2 # one RNG state per rank
