"The specdm_prepare console script, as a user runs it."
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np
from specdm.data import PreparedDataset
from specdm.testing import write_oscd_fixture, write_segmunich_fixture

def run(*args):
    exe = Path(sys.executable).parent/"specdm_prepare"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)

def test_scenes_then_refuse_then_overwrite(tmp_path):
    out = tmp_path/"scenes"
    r = run("--layout", "scenes", "--out", out, "--n_scenes", 3, "--scene_size", 128, "--patch_size", 64, "--quiet")
    assert r.returncode == 0, r.stderr
    ds = PreparedDataset(out); assert len(ds) == 12 and ds.meta["params"]["n_scenes"] == 3
    r = run("--layout", "scenes", "--out", out, "--n_scenes", 2, "--scene_size", 128, "--patch_size", 64)
    assert r.returncode != 0 and "not empty" in r.stderr and "--overwrite" in r.stderr
    assert len(PreparedDataset(out)) == 12  # untouched
    r = run("--layout", "scenes", "--out", out, "--n_scenes", 2, "--scene_size", 128, "--patch_size", 64, "--overwrite", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(PreparedDataset(out)) == 8

def test_oscd_fixture_layout(tmp_path):
    src = write_oscd_fixture(tmp_path/"OSCD", cities=("alpha", "beta", "gamma"), size=96)
    r = run("--layout", "oscd", "--src", src, "--out", tmp_path/"p", "--patch_size", 64, "--overlap", 0.6,
            "--bands", "segmunich", "--val_cities", "gamma", "--quiet")
    assert r.returncode == 0, r.stderr
    ds = PreparedDataset(tmp_path/"p")
    assert ds.task == "change" and ds.images.shape[1:] == (2, 10, 64, 64)
    assert ds.meta["splits"]["val"] > 0 and ds.meta["params"]["val_cities"] == "gamma"
    assert all(len(s["sha256"]) == 64 for it in ds.meta["items"] for s in it["sources"])
    # the changed block of each fixture city is counted exactly once per covering patch
    assert 0 < ds.meta["class_pixels"]["train"][1] < ds.meta["class_pixels"]["train"][0]

def test_segmunich_fixture_layout(tmp_path):
    src = write_segmunich_fixture(tmp_path/"SegMunich", n=2, size=128)
    r = run("--layout", "segmunich", "--src", src, "--out", tmp_path/"p", "--max_invalid", 0.95, "--quiet")
    assert r.returncode == 0, r.stderr
    ds = PreparedDataset(tmp_path/"p")
    assert ds.meta["splits"] == {"train": 2, "val": 2, "test": 0} and len(ds.class_names) == 13

def test_bad_input_names_the_file(tmp_path):
    src = write_oscd_fixture(tmp_path/"OSCD", cities=("alpha",), size=64)
    f = next(src.rglob("imgs_2/*_B03.tif")); f.write_bytes(f.read_bytes()[:200])
    r = run("--layout", "oscd", "--src", src, "--out", tmp_path/"p")
    assert r.returncode != 0 and f.name in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path/"p").exists()
    r = run("--layout", "folder", "--src", tmp_path/"nowhere", "--out", tmp_path/"q")
    assert r.returncode != 0 and "nowhere: folder not found" in r.stderr
