"Synthetic-dataset writing: a run killed half-way and resumed gives exactly n samples, identical to an uninterrupted run."
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pytest
from specdm.data import folder_items, read_raster
from specdm.sampling import write_synthetic
from specdm.testing import write_test_checkpoint

SCRIPT = textwrap.dedent('''
    import sys, torch
    from specdm.sampling import write_synthetic
    torch.set_num_threads(1)
    write_synthetic(sys.argv[1], sys.argv[2], int(sys.argv[3]), steps=20, batch_size=2, min_share=sys.argv[4:] or None)
''')

@pytest.mark.parametrize("min_share", [[], ["water=0.27"]], ids=["plain", "class_aware"])
def test_killed_write_resumes_to_exactly_n(tmp_path, min_share):
    ck = write_test_checkpoint(tmp_path/"ck"); (tmp_path/"w.py").write_text(SCRIPT); n = 24
    run = lambda out: subprocess.Popen([sys.executable, str(tmp_path/"w.py"), str(ck), str(out), str(n), *min_share], stderr=subprocess.PIPE, text=True)
    a = run(tmp_path/"a"); assert a.wait() == 0, a.stderr.read()
    b = run(tmp_path/"b"); t0 = time.time()
    while time.time() - t0 < 120 and len(list((tmp_path/"b"/"img").glob("*.tif"))) < 6: time.sleep(0.02)
    os.kill(b.pid, signal.SIGKILL); b.wait()
    assert not (tmp_path/"b"/"manifest.json").exists()
    assert len(list((tmp_path/"b"/"img").glob("*.tif"))) < n, "finished before it could be killed"
    c = run(tmp_path/"b"); assert c.wait() == 0, c.stderr.read()
    files = sorted(p.name for p in (tmp_path/"b"/"img").glob("*.tif"))
    assert files == [f"syn_{i:06d}.tif" for i in range(n)]  # exactly n, none twice, none lost
    assert not list((tmp_path/"b").rglob(".*.tmp"))  # no half-written file left
    man = json.loads((tmp_path/"b"/"manifest.json").read_text()); assert len(man["files"]) == n
    if min_share:  # the resumed run kept the same candidates as the uninterrupted one, some of them rejections away
        man_a = json.loads((tmp_path/"a"/"manifest.json").read_text()); assert man["candidate"] == man_a["candidate"] and max(man["candidate"]) > 0
    for i in (0, n // 2, n - 1):
        xa, _ = read_raster(tmp_path/"a"/"img"/f"syn_{i:06d}.tif"); xb, _ = read_raster(tmp_path/"b"/"img"/f"syn_{i:06d}.tif")
        np.testing.assert_allclose(xa, xb, atol=1e-2)
    assert len(list(folder_items(tmp_path/"b", bands="rgbn", num_classes=3))) == n

def _cli(*args, launcher=()):
    "Run specdm_sample (or `accelerate launch … -m specdm.sampling`) with tiny settings; return the CompletedProcess."
    cmd = list(launcher) + ([] if launcher else [str(Path(sys.executable).parent/"specdm_sample")])
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

def _read_all(folder):
    "{relative path: array} of every GeoTIFF under `folder`."
    return {str(p.relative_to(folder)): read_raster(p)[0] for p in sorted(Path(folder).rglob("*.tif"))}

def test_cli_writes_refuses_and_overwrites(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck"); out = tmp_path/"syn"
    args = ["--ckpt", ck, "--n", 3, "--steps", 3, "--out", out, "--dtype", "uint16", "--batch_size", 2]
    r = _cli(*args); assert r.returncode == 0, r.stderr
    assert "3 pairs" in r.stdout
    assert sorted(p.name for p in (out/"img").glob("*.tif")) == [f"syn_{i:06d}.tif" for i in range(3)]
    man = json.loads((out/"manifest.json").read_text()); assert man["dtype"] == "uint16" and len(man["files"]) == 3
    t = (out/"manifest.json").stat().st_mtime_ns
    r = _cli(*args); assert r.returncode == 0 and (out/"manifest.json").stat().st_mtime_ns == t  # same finished run: nothing to do
    r = _cli(*args, "--seed", 1); assert r.returncode != 0 and "--overwrite" in r.stderr and "Traceback" not in r.stderr
    (out/"img"/"stray.tif").write_bytes(b"x")
    r = _cli(*args[:3], 2, *args[4:], "--overwrite"); assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out/"img").glob("*.tif")) == ["syn_000000.tif", "syn_000001.tif"]  # replaced, not merged
    assert json.loads((out/"manifest.json").read_text())["n"] == 2
    r = _cli("--ckpt", ck, "--n", 2, "--out", tmp_path/"x", "--min_share", "lava=0.5")
    assert r.returncode != 0 and "unknown class 'lava'" in r.stderr and not (tmp_path/"x").exists()

def test_two_processes_write_one_manifest(tmp_path):
    "Two processes under accelerate launch write the same files as one, with and without class-aware rejection."
    ck = write_test_checkpoint(tmp_path/"ck"); (tmp_path/"w.py").write_text(SCRIPT)
    acc = Path(sys.executable).parent/"accelerate"
    r = subprocess.run([str(acc), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                        "--dynamo_backend", "no", str(tmp_path/"w.py"), str(ck), str(tmp_path/"s"), "7"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path/"s"/"manifest.json").read_text())
    assert man["processes"] == 2 and len(man["files"]) == 7 and not list((tmp_path/"s").glob("progress-*.json"))
    assert sorted(p.name for p in (tmp_path/"s"/"img").glob("*.tif")) == [f"syn_{i:06d}.tif" for i in range(7)]
    # the console script under accelerate launch, with rejection: same files as one process with another batch size
    args = ["--ckpt", ck, "--n", 5, "--steps", 3, "--min_share", "water=0.27", "--dtype", "uint16"]
    launch = [str(acc), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "-m", "specdm.sampling"]
    r2 = _cli(*args, "--out", tmp_path/"two", "--batch_size", 2, launcher=launch); assert r2.returncode == 0, r2.stderr
    r1 = _cli(*args, "--out", tmp_path/"one", "--batch_size", 5); assert r1.returncode == 0, r1.stderr
    m1, m2 = (json.loads((tmp_path/d/"manifest.json").read_text()) for d in ("one", "two"))
    assert m2["processes"] == 2 and m1["processes"] == 1 and m1["candidate"] == m2["candidate"] and max(m1["candidate"]) > 0
    assert m1["files"] == m2["files"] and m1["acceptance"]["candidates"] == m2["acceptance"]["candidates"]
    a, b = _read_all(tmp_path/"one"), _read_all(tmp_path/"two")
    assert list(a) == list(b) and len(a) == 10
    for k in a:
        if k.startswith("img"): np.testing.assert_allclose(a[k], b[k], atol=2)  # uint16, rounded
        else: assert (a[k] == b[k]).mean() > 0.99
    for k in [k for k in a if k.startswith("mask")]: assert (a[k] == 0).mean() >= 0.27 - 0.01

def _poison(ck, dst):
    "A copy of checkpoint `ck` whose EMA U-Net holds inf in one conv weight (as after an fp16 overflow in training)."
    import shutil, torch
    from safetensors.torch import load_file, save_file
    shutil.copytree(ck, dst); sd = load_file(dst/"ema.safetensors")
    k = next(k for k in sd if k.endswith("weight") and sd[k].ndim == 4); sd[k] = torch.full_like(sd[k], float("inf"))
    save_file(sd, dst/"ema.safetensors"); return dst

def test_cli_nonfinite_checkpoint_leaves_nothing(tmp_path):
    "A checkpoint with inf weights: specdm_sample exits non-zero with a clear message and writes no dataset."
    ck = _poison(write_test_checkpoint(tmp_path/"ck"), tmp_path/"nan"); out = tmp_path/"syn"
    r = _cli("--ckpt", ck, "--n", 2, "--sampler", "dpmpp2m", "--steps", 3, "--dtype", "uint16", "--out", out)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "samples are not finite" in r.stderr and "dpmpp2m (3 steps" in r.stderr and "fp16 overflow" in r.stderr, r.stderr
    assert not out.exists()  # no manifest, no all-zero images

def test_cli_spacing_is_recorded(tmp_path):
    "--spacing goes into the manifest and the summary; the default grid is recorded by name too."
    ck = write_test_checkpoint(tmp_path/"ck")
    r = _cli("--ckpt", ck, "--n", 1, "--steps", 3, "--spacing", "leading", "--out", tmp_path/"a"); assert r.returncode == 0, r.stderr
    assert "(leading grid)" in r.stdout and json.loads((tmp_path/"a"/"manifest.json").read_text())["spacing"] == "leading"
    r = _cli("--ckpt", ck, "--n", 1, "--steps", 3, "--sampler", "dpmpp2m", "--out", tmp_path/"b"); assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/"b"/"manifest.json").read_text())["spacing"] == "logsnr"

def test_synthetic_files_carry_the_source_radiometry(tmp_path):
    "Data prepared in physical units (files declaring scale/offset) are written back as the source stored them, with the tags."
    from specdm.core import load_json, save_json
    from specdm.data import read_image
    ck = write_test_checkpoint(tmp_path/"ck", "seg")
    cfg = load_json(ck/"config.json"); cfg["data"]["radiometry"] = dict(units="physical", write_scale=[0.5] * 4, write_offset=[-100.0] * 4)
    save_json(cfg, ck/"config.json")
    kw = dict(n=2, sampler="ddim", steps=3, seed=0, batch_size=2)
    phys = write_synthetic(ck, tmp_path/"f32", dtype="float32", **kw); dn = write_synthetic(ck, tmp_path/"u16", dtype="uint16", **kw)
    assert load_json(dn/"manifest.json")["radiometry"]["write_scale"] == [0.5] * 4
    for f in load_json(dn/"manifest.json")["files"]:
        x, _ = read_image(phys/f["img"]); y, prof = read_image(dn/f["img"])
        assert prof["scales"] == (0.5,) * 4 and prof["offsets"] == (-100.0,) * 4 and prof["dtype"] == "uint16"
        np.testing.assert_allclose(y, x, atol=0.26) # DN = (x + 100) / 0.5, rounded: read back through the tags, the same values
