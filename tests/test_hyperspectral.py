"""Hyperspectral sources: bands described by wavelength, MATLAB / ENVI / tagged GeoTIFF readers, the scene and csv layouts.

Every fixture is written here (`specdm.testing.write_hyperspectral_fixture` and small files below); the real Indian Pines
and EnMAP tests skip when SPECDM_DATA is absent.
"""
import json, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from specdm.data import (ENMAP_POTSDAM_CLASSES, INDIAN_PINES_CLASSES, SPLITS, Band, DataError, PreparedDataset, band_metadata,
                         csv_pairs, file_bands, read_mat, read_scene, write_geotiff)
from specdm.prepare import prepare
from specdm.testing import write_hyperspectral_fixture

def run(*args):
    exe = Path(sys.executable).parent/"specdm_prepare"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)

def owners(ds, shape):
    "(3, H, W) bool: which splits' patches cover each scene pixel (through each block's origin)."
    P = ds.meta["patch_size"]; own = np.zeros((3,) + shape, bool)
    for k, y, x, s in ds.patches:
        oy, ox = ds.meta["items"][k]["origin"]; own[s, oy + y:oy + y + P, ox + x:ox + x + P] = True
    return own

def test_mat_scene_cli_disjoint_splits(tmp_path):
    src = write_hyperspectral_fixture(tmp_path/"ip", "mat", size=64)
    r = run("--layout", "scene", "--src", src, "--out", tmp_path/"p", "--patch_size", 8, "--block", 16, "--overlap", 0.5,
            "--unlabelled", 0, "--max_invalid", 0.9, "--val_fraction", 0.25, "--test_fraction", 0.25, "--quiet")
    assert r.returncode == 0, r.stderr
    ds = PreparedDataset(tmp_path/"p"); meta = json.loads((tmp_path/"p"/"dataset.json").read_text())
    assert ds.images.shape[1:] == (22, 8, 8) and all(ds.meta["splits"][s] > 0 for s in SPLITS)
    assert meta["bands"][0] == dict(name="band_1", wavelength=420.0, fwhm=10.0, resolution=None)
    assert [d["name"] for d in meta["spectral"]["dropped"]] == ["band_6", "band_7"] and meta["spectral"]["source"] == "table wavelengths.csv"
    assert owners(ds, (64, 64)).sum(0).max() == 1 # no pixel of the scene is in two splits
    assert ds.class_names == ["class_0", "class_1", "class_2"] and ds.masks.max() == 255
    r = run("--layout", "scene", "--src", src, "--out", tmp_path/"q", "--patch_size", 8, "--unlabelled", 0, "--drop_bad_bands", "false", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(PreparedDataset(tmp_path/"q").bands) == 24

def test_mat_cube_same_file_and_keys(tmp_path):
    cube = np.random.default_rng(0).integers(1, 100, (20, 16, 5)).astype(np.uint16); gt = np.ones((20, 16), np.uint8)
    scipy.io.savemat(tmp_path/"both.mat", dict(data=cube, extra=cube[..., :3], labels=gt))
    with pytest.raises(DataError, match="holds 2 3-D arrays"): read_scene(tmp_path/"both.mat")
    with pytest.warns(UserWarning, match="no wavelengths"): x, y, info = read_scene(tmp_path/"both.mat", mat_key="data")
    assert x.shape == (5, 20, 16) and (x[:, 3, 7] == cube[3, 7]).all() and y.shape == (20, 16)

def test_mat_v73_through_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    cube = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    with h5py.File(tmp_path/"v73.mat", "w", userblock_size=512) as f: f["cube"] = cube.T # MATLAB writes column-major
    with open(tmp_path/"v73.mat", "r+b") as f: f.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    a, key = read_mat(tmp_path/"v73.mat")
    assert key == "cube" and (a == cube).all()

def test_mat_v73_without_h5py_says_so(tmp_path, monkeypatch):
    (tmp_path/"v73.mat").write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(400))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(DataError, match=r"v73.mat: is a MATLAB v7.3 file \(HDF5\): reading it needs h5py"): read_mat(tmp_path/"v73.mat")

def test_envi_cube_in_folder_layout(tmp_path):
    he = write_hyperspectral_fixture(tmp_path/"e", "envi", size=32); fo = tmp_path/"f"
    (fo/"img").mkdir(parents=True); (fo/"mask").mkdir()
    for f in he.glob("scene.*"): (fo/"img"/f.name).write_bytes(f.read_bytes())
    (fo/"mask"/"scene.tif").write_bytes((he/"scene_gt.tif").read_bytes())
    ds = PreparedDataset(prepare("folder", tmp_path/"p", fo, patch_size=16, unlabelled=0, val_fraction=0, max_invalid=1.0))
    assert ds.images.shape[1:] == (22, 16, 16) and ds.bands[0] == Band("band_1", 420.0, 10.0)
    assert ds.meta["spectral"]["bad_bands"] == ["band_6", "band_7"]

def test_csv_tiles_like_enmap(tmp_path):
    src = write_hyperspectral_fixture(tmp_path/"t", "tiles", size=64)
    ds = PreparedDataset(prepare("csv", tmp_path/"p", src, patch_size=16, unlabelled=0, class_names="a,b,c", max_invalid=1.0))
    assert ds.meta["splits"] == {"train": 14, "val": 1, "test": 1}
    assert len(ds.bands) == 22 and ds.bands[0].resolution == 30.0 and not np.isnan(np.asarray(ds.images)).any()
    assert {it["split"] for it in ds.meta["items"] if it["name"] == "tile_48_48"} == {"test"}
    bad = tmp_path/"t"/"extra_train.csv"; bad.write_text("image,mask\nimages/tile_48_48.tif,labels/tile_48_48.tif\n")
    with pytest.raises(DataError, match="test_files.csv: line 2: tile_48_48.tif is also listed in train: a tile in two splits leaks"): csv_pairs(src)

def test_wavelength_tags_round_trip(tmp_path):
    bands = [Band("band_3", 452.1, 9.8), Band("band_4", 461.0, 9.9)]
    d, t = band_metadata(bands)
    write_geotiff(tmp_path/"s.tif", np.ones((2, 4, 4), np.float32), descriptions=d, band_tags=t)
    sb = file_bands(tmp_path/"s.tif")
    assert [b.wavelength for b in sb.bands] == [452.1, 461.0] and [b.fwhm for b in sb.bands] == [9.8, 9.9]

def test_old_dataset_json_still_loads(tmp_path):
    p = prepare("scenes", tmp_path/"s", n_scenes=1, scene_size=64, patch_size=64, val_fraction=0)
    meta = json.loads((p/"dataset.json").read_text())
    assert set(meta["bands"][0]) == {"name", "wavelength", "fwhm", "resolution"} # as before hyperspectral support
    meta["bands"] = [{k: v for k, v in b.items() if k != "resolution"} for b in meta["bands"]] # a writer that omits unknowns
    (p/"dataset.json").write_text(json.dumps(meta))
    assert PreparedDataset(p).bands[0].resolution is None and np.isfinite(PreparedDataset(p).wavelengths).all()

# --- bad input: each a DataError naming the file ----------------------------------------------------------------------

@pytest.fixture
def scene(tmp_path):
    src = write_hyperspectral_fixture(tmp_path/"ip", "mat", size=32)
    return src, src/"scene_corrected.mat", src/"scene_gt.mat"

def test_bad_mat_key(scene):
    _, img, gt = scene
    with pytest.raises(DataError, match=r"scene_corrected.mat: has no array 'indian_pines_corrected'; it holds: scene_corrected \(32×32×24 uint16\)"):
        read_scene(img, gt, mat_key="indian_pines_corrected")

def test_errors_say_what_to_do(scene, tmp_path):
    "The two mistakes a first try at Indian Pines makes: the unlabelled code not given, the ground truth not found in the cube's file."
    src, img, _ = scene
    with pytest.raises(DataError, match=r"outside the class list 0\.\.2 \(ignore 255\); if code 0 marks unlabelled pixels and the classes are 1\.\.3, pass --unlabelled 0"):
        prepare("scene", tmp_path/"a", src, patch_size=8, class_names="a,b,c")
    with pytest.raises(DataError, match=r"scene_corrected.mat: holds no 2-D arrays .*give it with --labels FILE"): read_scene(img)

def test_class_name_presets(tmp_path):
    from specdm.prepare import CLASS_PRESETS
    src = write_hyperspectral_fixture(tmp_path/"ip", "mat", size=32, k=16)
    ds = PreparedDataset(prepare("scene", tmp_path/"p", src, patch_size=16, block=16, max_invalid=1.0, unlabelled=0, class_names="Indian_Pines"))
    assert tuple(ds.class_names) == CLASS_PRESETS["indian_pines"] and ds.class_names[0] == "alfalfa"

def test_bad_sizes(scene, tmp_path):
    _, img, _ = scene; scipy.io.savemat(tmp_path/"gt.mat", dict(gt=np.ones((30, 32), np.uint8)))
    with pytest.raises(DataError, match="gt.mat: ground truth is 30×32 but the cube scene_corrected.mat is 32×32×24"): read_scene(img, tmp_path/"gt.mat")

def test_bad_envi_header_without_binary(tmp_path):
    he = write_hyperspectral_fixture(tmp_path/"e", "envi", size=16); (he/"scene.img").unlink()
    r = run("--layout", "scene", "--src", he/"scene.hdr", "--labels", he/"scene_gt.tif", "--out", tmp_path/"p", "--patch_size", 8)
    assert r.returncode != 0 and "scene.hdr: ENVI header without its binary" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path/"p").exists()

@pytest.mark.parametrize("table, message", [
    ("wavelength\n" + "".join(f"{0.42 + 0.08 * i:.2f}\n" for i in range(24)), "wavelengths 0.42–2.26 have no declared unit and look like micrometres"),
    ("wavelength_nm\n" + "".join(f"{2400 - 80 * i}\n" for i in range(24)), "wavelengths are not increasing: band 2 at 2320 nm follows band 1 at 2400 nm"),
    ("wavelength_nm\n" + "".join(f"{400 + 80 * i}\n" for i in range(20)), "lists 20 wavelengths but the image scene_corrected.mat has 24 bands"),
])
def test_bad_wavelength_tables(scene, tmp_path, table, message):
    src, img, gt = scene; (tmp_path/"wl.csv").write_text(table)
    with pytest.raises(DataError, match=f"wl.csv: {message}"): read_scene(img, gt, wavelengths=tmp_path/"wl.csv")
    r = run("--layout", "scene", "--src", src, "--wavelengths", tmp_path/"wl.csv", "--out", tmp_path/"p", "--patch_size", 8)
    assert r.returncode != 0 and "wl.csv" in r.stderr and "Traceback" not in r.stderr

def test_micrometres_declared_are_converted(scene, tmp_path):
    _, img, gt = scene
    (tmp_path/"wl.csv").write_text("center_um,fwhm_um\n" + "".join(f"{0.42 + 0.08 * i:.2f},0.01\n" for i in range(24)))
    x, y, info = read_scene(img, gt, wavelengths=tmp_path/"wl.csv")
    assert info["bands"][0] == Band("band_1", 420.0, 10.0) and info["bands"][-1].wavelength == 2260.0

# --- real data --------------------------------------------------------------------------------------------------------

def test_indian_pines_prepares_with_disjoint_splits(shared_data, tmp_path):
    src = shared_data/"hyperspectral"/"indian_pines"
    if not src.is_dir(): pytest.skip("no Indian Pines in the data folder")
    ds = PreparedDataset(prepare("scene", tmp_path/"ip", src, patch_size=16, block=32, overlap=0.5, max_invalid=0.75, unlabelled=0,
                                 class_names=",".join(INDIAN_PINES_CLASSES)))
    wl = ds.wavelengths
    assert len(ds.bands) == 200 and abs(wl[0] - 400.02) < 0.01 and abs(wl[-1] - 2489.1) < 0.5
    assert [d["bands"] for d in ds.meta["spectral"]["detectors"]] == [[1, 31], [32, 94], [95, 200]] # AVIRIS's spectrometers overlap
    assert owners(ds, (145, 145)).sum(0).max() == 1
    assert all(ds.meta["splits"][s] > 0 for s in SPLITS) and ds.source_dtype == "uint16"
    assert all(c > 0 for c in ds.meta["class_pixels"]["train"]) # every class is in training

def test_enmap_tiles_prepare(shared_data, tmp_path):
    src = shared_data/"hyperspectral"/"enmap_potsdam"
    if not src.is_dir(): pytest.skip("no EnMAP tiles in the data folder")
    ds = PreparedDataset(prepare("csv", tmp_path/"en", src, patch_size=16, max_invalid=0.75, unlabelled=0, class_names=",".join(ENMAP_POTSDAM_CLASSES)))
    sp = ds.meta["spectral"]
    assert len(ds.bands) == 218 and sp["bad_bands"] == [f"band_{i}" for i in range(130, 136)]
    assert [d["bands"] for d in sp["detectors"]] == [[1, 91], [92, 224]] and ds.bands[0].resolution == 30.0
    lists = {s: {l.split(",")[0].split("/")[-1][:-4] for l in (src/f"{f}_files.csv").read_text().splitlines()[1:]} for s, f in (("train", "train"), ("val", "validation"), ("test", "test"))}
    assert all(it["name"] in lists[it["split"]] for it in ds.meta["items"])
    assert not np.isnan(np.asarray(ds.images)).any() and ds.source_dtype == "int16"
