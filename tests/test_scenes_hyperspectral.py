"Built-in scenes at any sensor's bands (specdm.scenes): Sentinel-2 defaults unchanged, shipped band tables, EnMAP's tabulated responses."
import hashlib, os, subprocess, sys
from importlib import resources

import numpy as np
import pytest

from specdm.scenes import (SCENE_CLASSES, Sensor, class_library, get_sensor, make_change_scene, make_scene,
                           response_matrix, scene_bands, scene_items, spectral_library)

def _digest(items) -> str:
    h = hashlib.sha256()
    for it in items:
        for part in (it.name.encode(), it.split.encode(), np.ascontiguousarray(it.image).tobytes(), np.ascontiguousarray(it.mask).tobytes()): h.update(part)
    return h.hexdigest()

# Recorded from specdm.scenes before the sensors were added (numpy 2.4.6, scipy 1.17.1); the defaults must not move.
S2_DIGESTS = {
    "seg": "5494046f6c2b1d7e7d946f9d1a1a83cd8e0b5a1ada409c930c22a6748c4d136f",
    "change": "abcada6ceed877b6f485239443c7d53ac0f99b5413932dc49be337f432709ac5",
    "seg_s2_13": "952e5fa49c6bfeb52963d8efaec950f6443460d83019544e48e2d1c479a5ec45",
    "rgb256": "f18e963f57dc9907091228423090c27d59ba99c71cd24dd396a00b0c0fb1d605",
    "lib": "78d2c52a7bbf8270a5f69afa06961371caaf144485b6c7f6abba68d80f604e50",
}

def test_sentinel2_defaults_unchanged():
    lib = hashlib.sha256()
    for v in class_library("segmunich").values(): lib.update(v.tobytes())
    got = {"seg": _digest(scene_items(3, size=64, seed=0)), "change": _digest(scene_items(3, size=64, seed=0, task="change")),
           "seg_s2_13": _digest(scene_items(2, size=48, seed=5, bands="s2")),
           "rgb256": hashlib.sha256(make_scene(256, seed=0, bands="rgb")[0].tobytes()).hexdigest(), "lib": lib.hexdigest()}
    assert got == S2_DIGESTS
    assert _digest(scene_items(3, size=64, seed=0, sensor="sentinel2")) == S2_DIGESTS["seg"] # naming the default changes nothing

def test_band_tables_ship_with_the_package(tmp_path):
    for name in ("aviris_indian_pines", "enmap"): assert (resources.files("specdm")/"sensors"/f"{name}.csv").is_file()
    code = ("from specdm.scenes import get_sensor, make_scene; s = get_sensor('enmap'); a = get_sensor('aviris_indian_pines'); "
            "print(len(s.bands), len(a.bands), make_scene(32, sensor='enmap')[0].shape)")
    env = {**os.environ, "SPECDM_DATA": str(tmp_path/"nowhere"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "224 200 (224, 32, 32)"

def test_presets_and_band_selection():
    en, av = get_sensor("enmap"), get_sensor("aviris_indian_pines")
    assert [b.name for b in en.bands[:2]] == ["b001", "b002"] and en.bands[0].resolution == 30 and av.bands[0].resolution == 20
    assert len(scene_bands("good", "enmap")) == 218 and scene_bands(sensor="aviris_indian_pines") == list(av.bands)
    with pytest.raises(ValueError, match="has no band"): scene_bands("segmunich", "enmap")
    with pytest.raises(ValueError, match="unknown sensor"): get_sensor("prisma")

def test_hyperspectral_items_seg_and_change():
    seg = list(scene_items(2, size=32, seed=3, sensor="aviris_indian_pines"))
    chg = list(scene_items(2, size=32, seed=3, bands="good", task="change", sensor="enmap"))
    assert seg[0].image.shape == (200, 32, 32) and chg[0].image.shape == (2, 218, 32, 32)
    assert [i.split for i in seg] == [i.split for i in chg] == [i.split for i in scene_items(2, size=32, seed=3)]
    assert seg[0].mask.dtype == np.int64 and seg[0].mask.max() < len(SCENE_CLASSES) and set(np.unique(chg[0].mask)) <= {0, 1}
    np.testing.assert_array_equal(seg[1].mask, list(scene_items(2, size=32, seed=3))[1].mask) # same layouts as Sentinel-2
    assert all(np.isfinite(i.image).all() and i.image.min() >= 0 for i in seg + chg)

def test_any_gaussian_sensor():
    from specdm.scenes import gaussian_sensor
    s = gaussian_sensor("toy", np.linspace(420, 2400, 40), np.full(40, 12.0), 30)
    x, m = make_scene(32, seed=0, sensor=s)
    assert x.shape == (40, 32, 32)
    np.testing.assert_array_equal(m, make_scene(32, seed=0)[1])

def test_enmap_tabulated_responses(shared_data):
    srf = shared_data/"hyperspectral"/"enmap_potsdam"/"enmap_potsdam_srf.geojson"
    if not srf.is_file(): pytest.skip(f"{srf} not found")
    en, tab = get_sensor("enmap"), get_sensor("enmap", srf=srf)
    assert isinstance(tab, Sensor) and tab.responses is not None and tab.bands == en.bands
    wl = spectral_library()[0]
    assert np.abs(response_matrix(tab, wl) - response_matrix(en, wl)).sum(1).max() < 0.02 # near-Gaussian responses
    x, _ = make_change_scene(32, seed=1, sensor=tab)
    assert x.shape == (2, 224, 32, 32) and np.isfinite(x).all()
