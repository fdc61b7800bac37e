"Preparation of the real Sentinel-2 samples in SPECDM_DATA (skipped when absent)."
import numpy as np
import pytest
from specdm.data import (BAND_PRESETS, PreparedDataset, ChangeDataset, SegmentationDataset, oscd_items, oscd_label,
                         oscd_change_labels, read_mask, patch_starts, prepare_dataset, read_stacked_tiff, _oscd_dirs)
from specdm.prepare import prepare

CITIES = ["aguasclaras", "bercy", "bordeaux", "nantes", "paris", "rennes", "saclay_e", "pisa"]

@pytest.fixture(scope="module")
def oscd8(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("p")/"oscd"
    return PreparedDataset(prepare("oscd", out, shared_data/"oscd", bands="segmunich", patch_size=128, overlap=0.6, val_cities="pisa"))

def test_oscd_eight_cities_prepare(oscd8):
    assert [it["name"] for it in oscd8.meta["items"]] == CITIES
    assert oscd8.images.shape[1:] == (2, 10, 128, 128) and oscd8.masks.shape[1:] == (128, 128)
    assert [b["name"] for b in oscd8.meta["bands"]] == list(BAND_PRESETS["segmunich"])
    assert not np.isnan(oscd8.images[::7]).any()
    x, y = ChangeDataset(oscd8, "val")[0]
    assert x.shape == (2, 10, 128, 128) and set(np.unique(y.numpy())) <= {0, 1}

def test_oscd_changed_fraction_matches_source(oscd8, shared_data):
    "Per city, the changed share of the patches equals the label's, weighted by how often patches cover each pixel."
    m = oscd8.masks; k = oscd8.patches[:, 0]
    tot_src = tot_pat = 0
    for i, it in enumerate(oscd_items(shared_data/"oscd", bands="segmunich")):
        H, W = it.mask.shape; cover = np.zeros((H, W))
        for y0 in patch_starts(H, 128, 0.6):
            for x0 in patch_starts(W, 128, 0.6): cover[y0:y0+128, x0:x0+128] += 1
        expected = (cover * it.mask).sum() / cover.sum()
        got = (m[k == i] == 1).mean()
        assert abs(got - expected) < 1e-9, (it.name, got, expected)
        tot_src += it.mask.mean() / 8; tot_pat += got / 8
    assert abs(tot_src - tot_pat) < 0.005

def test_oscd_png_and_tif_labels_agree(shared_data):
    img, lab = _oscd_dirs(shared_data/"oscd")
    for c in CITIES:
        tif = oscd_change_labels(read_mask(lab/c/"cm"/f"{c}-cm.tif"))
        png = oscd_change_labels(read_mask(lab/c/"cm"/"cm.png"))
        assert tif.shape == png.shape and (tif != png).mean() < 0.01, c
        assert 0.001 < tif.mean() < 0.05

def test_sen1floods11_ignores_minus_one(shared_data, tmp_path):
    ds = PreparedDataset(prepare("sen1floods11", tmp_path/"s1f", shared_data/"sen1floods11", bands="s2", patch_size=128, val_fraction=0))
    raw = read_mask(shared_data/"sen1floods11/Labels/Spain_7370579_LabelHand.tif")
    assert ds.meta["ignored_pixels"]["train"] == (raw == -1).sum() == 99
    assert ds.meta["class_pixels"]["train"] == [(raw == 0).sum(), (raw == 1).sum()]
    assert len(ds) == 16 and ds.images.shape[1] == 13
    x, y = SegmentationDataset(ds)[0]
    assert set(np.unique(y.numpy())) <= {0, 1, 255}

def test_segmunich_sample_band_order(shared_data):
    x = read_stacked_tiff(shared_data/"segmunich_sample/img/SegMunich_train_img_10.tif", count=10)
    assert x.shape == (10, 128, 128)
    mean = dict(zip(BAND_PRESETS["segmunich"], x.reshape(10, -1).mean(1)))
    assert mean["B3"] > mean["B4"] and mean["B8"] > 3 * mean["B4"] and mean["B5"] < mean["B6"] < mean["B7"] < mean["B8A"]
