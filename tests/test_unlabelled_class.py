"""Sparse labels (Indian Pines leaves about half its pixels unlabelled): with `VAEConfig.unlabelled_class` the mask branch
learns the unlabelled pixels as class K, so generated masks can leave pixels unlabelled where real masks do."""
import pytest
import torch

from specdm.vae import AEConfig, VAEConfig, build_vae

IGN = 255

def _model(kind="two_stream", task="seg", unlabelled=True, K=3):
    torch.manual_seed(0)
    return build_vae(VAEConfig(in_bands=4, num_classes=K, task=task, kind=kind, unlabelled_class=unlabelled,
                               image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=2, attn_mid=False)))

def _batch(task="seg"):
    g = torch.Generator().manual_seed(1)
    x = torch.rand((2, 2, 4, 8, 8) if task == "change" else (2, 4, 8, 8), generator=g) * 2 - 1
    y = torch.randint(0, 2 if task == "change" else 3, (2, 8, 8), generator=g); y[:, :3] = IGN # a band of unlabelled rows
    return x, y

@pytest.mark.parametrize("kind,task", [("two_stream", "seg"), ("two_stream", "change"), ("single_stream", "seg")])
def test_unlabelled_pixels_are_class_k(kind, task):
    K = 2 if task == "change" else 3; m = _model(kind, task, K=K); x, y = _batch(task)
    assert m.config.mask_channels == K + 1
    oh = m.mask_one_hot(y)
    assert oh.shape == (2, K + 1, 8, 8) and (oh[:, K] == (y == IGN)).all() and (oh.sum(1) == 1).all() # ignored pixels one-hot at K
    assert (m.mask_target(y) == torch.where(y == IGN, K, y)).all()
    out = m(x, y); assert torch.isfinite(out.loss) and out.mask_logits.shape[1] == K + 1
    logits = torch.full((1, K + 1, 2, 2), -5.0); logits[0, K, 0, 0] = logits[0, 1, 0, 1] = logits[0, 0, 1] = 5.0
    assert m.logits_to_mask(logits).tolist() == [[[IGN, 1], [0, 0]]] # class K comes back as the ignore index
    z = m.encode(x, y); assert m.decode_pairs(z)[1].shape == (2, 8, 8)

def test_without_unlabelled_class_nothing_changes():
    m = _model(unlabelled=False); x, y = _batch()
    assert m.config.mask_channels == 3 and m.mask_ae.encoder.conv_in.in_channels == 3
    oh = m.mask_one_hot(y); assert (oh[:, :, :3] == 0).all() and oh.shape[1] == 3 # ignored pixels all-zero, as before
    logits = torch.zeros(1, 3, 2, 2); logits[0, 2] = 1.0
    assert (m.logits_to_mask(logits) == 2).all()
    old = m.config.to_dict(); old.pop("unlabelled_class") # a config written before the field existed
    assert VAEConfig.from_dict(old).unlabelled_class is False

def test_unlabelled_class_is_learned():
    "A few steps on masks whose top rows are unlabelled: the decoded masks leave those rows unlabelled."
    m = _model(); x, y = _batch(); opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(150):
        opt.zero_grad(); m(x, y, sample_posterior=False).loss.backward(); opt.step()
    with torch.no_grad(): _, pred = m.decode_pairs(m.encode(x, y))
    assert (pred[:, :3] == IGN).float().mean() > 0.9 and (pred[:, 3:] != IGN).float().mean() > 0.9

def test_synthetic_files_keep_unlabelled_pixels(tmp_path):
    "Synthetic masks with unlabelled pixels: the nodata tag of the written file, read back as the ignore index."
    import numpy as np, rasterio
    from specdm.data import PreparedDataset
    from specdm.prepare import prepare
    from specdm.sampling import _write_sample
    rng = np.random.default_rng(0); bands = [dict(name=b) for b in ("B2", "B3", "B4", "B8")]; n_ign = 0
    for i in range(4):
        y = rng.integers(0, 3, (16, 16)); y[: 2 * i] = IGN; n_ign += 32 * i # samples 1..3 leave rows unlabelled
        _write_sample(tmp_path/"syn", "folder", "seg", i, rng.uniform(0.01, 0.3, (4, 16, 16)).astype(np.float32), y, bands, "float32")
    with rasterio.open(tmp_path/"syn"/"mask"/"syn_000001.tif") as f: assert f.nodata == IGN
    with rasterio.open(tmp_path/"syn"/"mask"/"syn_000000.tif") as f: assert f.nodata is None # nothing unlabelled, no tag
    ds = PreparedDataset(prepare("folder", tmp_path/"ds", tmp_path/"syn", patch_size=16, class_names="a,b,c"))
    assert sum(ds.meta["ignored_pixels"].values()) == n_ign
    y = rng.integers(0, 2, (16, 16)); y[:4] = IGN # change: OSCD's labels are 1/2, unlabelled 0 with a nodata tag
    _write_sample(tmp_path/"oscd", "oscd", "change", 0, rng.uniform(0.01, 0.3, (2, 4, 16, 16)).astype(np.float32), y, bands, "float32")
    with rasterio.open(next((tmp_path/"oscd").rglob("*-cm.tif"))) as f: a = f.read(1); assert f.nodata == 0
    assert (a[:4] == 0).all() and set(np.unique(a[4:])) <= {1, 2} and ((a[4:] - 1) == y[4:]).all()
