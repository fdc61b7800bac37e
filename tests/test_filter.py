"""The quality filter (issue 12, item 4): a synthetic folder scored by a segmenter and by the generator's own image → mask
prediction keeps the requested fraction, best first; the scores sit beside the pairs, the rejected pairs move to
rejected/, the manifest lists the kept ones, and a folder is filtered once."""
import json, subprocess, sys

import pytest
import torch
import torch.nn.functional as F

from specdm.data import DataError
from specdm.filter import filter_synthetic, keep_top, quality_scores, specdm_filter
from specdm.metrics import folder_set, pairs_set, reference_normalizer, save_spectral_net, train_spectral_net
from specdm.sampling import Pairs, write_synthetic
from specdm.testing import write_test_checkpoint

BANDS, CLASSES = ["B4", "B3", "B2", "B8"], ["water", "land", "road"]

def rule(x): # a fixed stand-in segmenter on the test checkpoint's bands: water where NIR < green, road where bright red, else land
    cls = torch.where(x[:, 3] < x[:, 1], 0, torch.where(x[:, 0] > 1500, 2, 1))
    return F.one_hot(cls, 3).permute(0, 3, 1, 2).float()

@pytest.fixture(scope="module")
def ck(tmp_path_factory): return write_test_checkpoint(tmp_path_factory.mktemp("filter")/"ck", per_part=True)

def records(folder): return json.loads((folder/"scores.json").read_text())["records"]

def test_end_to_end(ck, tmp_path):
    syn = write_synthetic(ck, tmp_path/"syn", 8, steps=2, batch_size=8)
    rec = filter_synthetic(syn, keep_top=0.5, segmenter=rule, steps=3)
    man = json.loads((syn/"manifest.json").read_text()); rs = records(syn)
    assert (rec["kept"], rec["rejected"], len(man["files"]), len(folder_set(syn))) == (4, 4, 4, 4)
    assert man["filter"]["keep_top"] == 0.5 and set(man["filter"]["scorers"]) == {"segmenter", "self"} and man["filter"]["scores"] == "scores.json"
    assert man["filter"]["scorers"]["self"]["generator"]  # the manifest's own checkpoint, its weights checked
    assert len(rs) == 8 and all({"segmenter", "self", "score", "files", "kept"} <= set(r) for r in rs)
    assert [r["files"] for r in rs if r["kept"]] == man["files"]
    assert len(list((syn/"rejected").rglob("*.tif"))) == 8 and len(list((syn/"img").glob("*.tif"))) == 4  # 4 pairs moved: image and mask each
    for r in rs:
        for p in r["files"].values(): assert (syn/p).exists() == r["kept"] and (syn/"rejected"/p).exists() == (not r["kept"])
    kept, rejected = [r["score"] for r in rs if r["kept"]], [r["score"] for r in rs if not r["kept"]]
    assert min(kept) >= max(rejected) and min(kept) == man["filter"]["threshold"]
    with pytest.raises(DataError, match="filtered before"): filter_synthetic(syn, keep_top=0.5, segmenter=rule)
    assert len(json.loads((syn/"manifest.json").read_text())["files"]) == 4  # the refused second run changed nothing

@pytest.mark.parametrize("fraction,kept", [(0.125, 1), (0.3, 3), (0.5, 4), (0.6, 5), (1.0, 8)])
def test_keeps_the_requested_fraction(ck, tmp_path, fraction, kept):
    syn = write_synthetic(ck, tmp_path/"syn", 8, steps=2, batch_size=8)
    rec = filter_synthetic(syn, keep_top=fraction, segmenter=rule, self_score=False)
    assert rec["kept"] == kept and len(json.loads((syn/"manifest.json").read_text())["files"]) == kept
    assert len(list((syn/"rejected").rglob("*.tif"))) == 2 * (8 - kept)  # an image and a mask per rejected pair

def test_keep_top_prefers_matching_masks():
    x = 100 + 2900 * torch.rand(10, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    y = rule(x).argmax(1); y[[2, 5, 7]] = y[[5, 7, 2]]  # three pairs get another pair's mask
    s = quality_scores(Pairs(x, y, BANDS, CLASSES), segmenter=rule)
    kept, idx = keep_top(Pairs(x, y, BANDS, CLASSES), 0.7, s)
    assert idx.tolist() == [0, 1, 3, 4, 6, 8, 9] and kept.info["filter"]["kept"] == 7 and torch.equal(kept.masks, y[idx])

def test_refuses_what_it_cannot_filter(ck, tmp_path):
    with pytest.raises(DataError, match="no manifest.json"): filter_synthetic(tmp_path, segmenter=rule)
    syn = write_synthetic(ck, tmp_path/"syn", 2, steps=2)
    with pytest.raises(ValueError, match="no scorer"): filter_synthetic(syn, self_score=False)
    with pytest.raises(ValueError, match=r"\(0, 1\]"): filter_synthetic(syn, keep_top=1.5, segmenter=rule)
    with pytest.raises(ValueError, match="is not there"): filter_synthetic(syn, checkpoint=tmp_path/"nothing")
    assert not (syn/"scores.json").exists() and not (syn/"rejected").exists()

def test_trained_spectral_net_as_segmenter(ck, tmp_path):
    "A SpectralNet trained for 40 steps (0.3 s) on pairs the rule labels, loaded from its folder, prefers the pairs whose mask matches."
    g = torch.Generator().manual_seed(0); x = 100 + 2900 * torch.rand(32, 4, 16, 16, generator=g); y = rule(x).argmax(1)
    real = pairs_set(Pairs(x, y, BANDS, CLASSES), "real")
    net, rec = train_spectral_net(real, reference_normalizer(real), steps=40, batch_size=16, lr=1e-2, width=16, seed=0)
    folder = save_spectral_net(net, tmp_path/"snet", BANDS, CLASSES, rec)
    syn = write_synthetic(ck, tmp_path/"syn", 6, steps=2, batch_size=6)
    out = filter_synthetic(syn, 0.5, segmenter=folder, self_score=False)
    assert out["scorers"]["segmenter"]["kind"] == "SpectralNet" and len(out["scorers"]["segmenter"]["weights_sha256"]) == 64
    xt = 100 + 2900 * torch.rand(16, 4, 16, 16, generator=g); yt = rule(xt).argmax(1)
    good = quality_scores(Pairs(xt, yt, BANDS, CLASSES), segmenter=net)["score"]
    bad = quality_scores(Pairs(xt, yt.roll(1, 0), BANDS, CLASSES), segmenter=net)["score"]
    assert good.mean() > bad.mean() + 0.1  # 0.47 and 0.18 when written

def test_change_folder_is_scored_by_the_generator(tmp_path):
    cd = write_test_checkpoint(tmp_path/"cd", task="change", per_part=True)
    syn = write_synthetic(cd, tmp_path/"syn", 4, steps=2)
    rec = filter_synthetic(syn, 0.5, segmenter=rule, steps=2)
    assert rec["kept"] == 2 and rec["scorers"]["segmenter"].startswith("skipped") and "self" in rec["scorers"]
    assert len(list((syn/"rejected").rglob("*.tif"))) == 6  # two triplets: date 1, date 2, mask

def test_command_line(ck, tmp_path, capsys, monkeypatch):
    syn = write_synthetic(ck, tmp_path/"syn", 4, steps=2)
    monkeypatch.setattr(sys, "argv", ["specdm_filter", "--folder", str(syn), "--keep_top", "0.25", "--steps", "2", "--threads", "1"])
    assert specdm_filter() is None  # parses sys.argv, as the console script does
    assert "kept 1 of 4 pairs" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="filtered before"): specdm_filter(folder=str(syn), threads=1)
    r = subprocess.run([sys.executable, "-m", "specdm.filter", "--help"], capture_output=True, text=True)  # a fresh process
    assert r.returncode == 0 and "--keep_top" in r.stdout

def test_self_score_refused_on_image_to_mask_folders(tmp_path):
    import numpy as np
    import torch
    from specdm.filter import filter_synthetic
    from specdm.sampling import write_synthetic
    from specdm.testing import write_test_checkpoint
    ck = write_test_checkpoint(tmp_path/"ck", per_part=True)
    imgs = write_synthetic(ck, tmp_path/"joint", 2, steps=2)
    from specdm.metrics import folder_set
    x, y, _ = folder_set(imgs).read(np.arange(2))
    from specdm.sampling import Conditions
    out = write_synthetic(ck, tmp_path/"i2m", 2, steps=2, mode="image_to_mask", conditions=Conditions(torch.from_numpy(x), torch.from_numpy(y)))
    with pytest.raises(ValueError, match="self score would give every pair 1.0"):
        filter_synthetic(out, 0.5)
