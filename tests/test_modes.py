"""Sampling modes (issue 12): an existing joint-only checkpoint samples exactly as before, per-part checkpoints sample
every mode, and conditional sampling writes what it was given into the synthetic dataset and its manifest."""
import json

import pytest
import torch

from specdm.sampling import load_ldm, sample_pairs, write_synthetic
from specdm.testing import write_test_checkpoint

# Fingerprints of `sample_pairs(write_test_checkpoint(task), 3, sampler, steps, seed=1)` computed with the code of commit
# 351349a (before per-part steps existed): sum of the images, sum of their squares, sum of the masks.
BEFORE = {("seg", "ddim", 5): (4579837.432816, 7455600571.6313, 770), ("seg", "dpmpp2m", 4): (4580016.874878, 7455809026.4875, 777),
          ("seg", "ddpm", 6): (4584126.176910, 7451116676.6005, 788), ("change", "ddim", 5): (9179155.253494, 15047457177.0926, 470),
          ("change", "dpmpp2m", 4): (9179050.416100, 15049416936.3423, 470), ("change", "ddpm", 6): (9174664.626129, 15017088465.8783, 478)}

@pytest.mark.parametrize("task,sampler,steps", list(BEFORE))
def test_existing_checkpoint_samples_as_before(tmp_path, task, sampler, steps):
    ck = write_test_checkpoint(tmp_path/"ck", task=task)
    cfg = json.loads((ck/"config.json").read_text()); del cfg["unet"]["parts"]  # a config.json written before `parts` existed
    (ck/"config.json").write_text(json.dumps(cfg))
    p = sample_pairs(ck, 3, sampler=sampler, steps=steps, seed=1)
    s, s2, ms = BEFORE[(task, sampler, steps)]
    assert p.images.double().sum().item() == pytest.approx(s, rel=1e-7)
    assert p.images.double().square().sum().item() == pytest.approx(s2, rel=1e-7)
    assert p.masks.sum().item() == ms
    assert p.info["mode"] == "joint" and p.info["guidance_scale"] == 1.0 and p.info["conditions"] is None

def test_mask_to_image_writes_the_given_masks(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck", per_part=True)
    masks = torch.randint(0, 3, (4, 16, 16))
    out = write_synthetic(ck, tmp_path/"syn", 6, steps=3, batch_size=4, mode="mask_to_image", conditions=masks, guidance_scale=2.0)
    man = json.loads((out/"manifest.json").read_text())
    assert man["mode"] == "mask_to_image" and man["guidance_scale"] == 2.0 and man["conditions"]["count"] == 4
    assert man["conditions"]["rows"] == [0, 1, 2, 3, 0, 1]
    from specdm.data import read_mask
    for k, f in enumerate(man["files"]): assert (read_mask(out/f["mask"]) == masks[k % 4].numpy()).all()
    again = write_synthetic(ck, tmp_path/"syn", 6, steps=3, batch_size=4, mode="mask_to_image", conditions=masks, guidance_scale=2.0)
    assert again == out  # the same run: nothing to do
    with pytest.raises(FileExistsError, match="guidance_scale"):
        write_synthetic(ck, tmp_path/"syn", 6, steps=3, mode="mask_to_image", conditions=masks, guidance_scale=3.0)

def test_conditions_from_a_prepared_dataset_and_a_mask_folder(tmp_path):
    import numpy as np
    from specdm.data import write_geotiff
    ck = write_test_checkpoint(tmp_path/"ck", per_part=True); m = load_ldm(ck)
    (tmp_path/"masks").mkdir()
    for k in range(3): write_geotiff(tmp_path/"masks"/f"m{k}.tif", np.full((16, 16), k, np.uint8))
    p = sample_pairs(m, 3, steps=2, mode="mask_to_image", conditions=tmp_path/"masks")
    assert [int(x.unique()) for x in p.masks] == [0, 1, 2] and p.info["conditions"]["source"] == str(tmp_path/"masks")
    with pytest.raises(ValueError, match="no mask files"):
        (tmp_path/"empty").mkdir(); sample_pairs(m, 1, steps=2, mode="mask_to_image", conditions=tmp_path/"empty")

def test_specdm_sample_mode_options(tmp_path, capsys, monkeypatch):
    "The options as the console script reads them from sys.argv (fastcore's call_parse), in this process."
    import sys
    import numpy as np
    from specdm.data import write_geotiff
    from specdm.sampling import specdm_sample
    ck = write_test_checkpoint(tmp_path/"ck", per_part=True); (tmp_path/"masks").mkdir()
    for k in range(2): write_geotiff(tmp_path/"masks"/f"m{k}.tif", np.full((16, 16), k + 1, np.uint8))
    monkeypatch.setattr(sys, "argv", ["specdm_sample", "--ckpt", str(ck), "--n", "3", "--out", str(tmp_path/"syn"), "--steps", "2",
                                      "--mode", "mask_to_image", "--conditions", str(tmp_path/"masks"), "--guidance_scale", "1.5", "--threads", "1"])
    assert specdm_sample() is None
    assert "mode mask_to_image, guidance scale 1.5, conditions" in capsys.readouterr().out
    man = json.loads((tmp_path/"syn"/"manifest.json").read_text())
    assert man["conditions"]["rows"] == [0, 1, 0] and len(man["conditions"]["sha256"]) == 64
    with pytest.raises(SystemExit, match="needs conditions"):
        specdm_sample(ckpt=str(ck), n=1, out=str(tmp_path/"syn2"), steps=2, mode="mask_to_image", threads=1)
    assert not (tmp_path/"syn2").exists()  # refused before anything is written

def test_conditions_refused_before_anything_is_written(tmp_path):
    import numpy as np
    from specdm.data import write_geotiff
    pp = write_test_checkpoint(tmp_path/"pp", per_part=True); jo = write_test_checkpoint(tmp_path/"jo")
    masks = torch.randint(0, 3, (2, 16, 16))
    bad = [(dict(ckpt=jo, mode="mask_to_image", conditions=masks, guidance_scale=2.0), "trained jointly only"),
           (dict(ckpt=pp, mode="joint", guidance_scale=2.0), "joint has none"),
           (dict(ckpt=pp, mode="mask_to_image", conditions=masks, guidance_scale=-1.0), ">= 0"),
           (dict(ckpt=pp, mode="image_to_mask", conditions=masks), "hold no images"),
           (dict(ckpt=pp, mode="mask_to_image", conditions=masks.float() + 0.4), "not integers")]
    for k, (kw, msg) in enumerate(bad):
        ck = kw.pop("ckpt")
        with pytest.raises(ValueError, match=msg): write_synthetic(ck, tmp_path/f"out{k}", 2, steps=2, **kw)
        assert not (tmp_path/f"out{k}").exists()
    (tmp_path/"masks").mkdir()
    write_geotiff(tmp_path/"masks"/"a.tif", np.zeros((16, 16), np.uint8))
    write_geotiff(tmp_path/"masks"/"b.tif", np.full((16, 16), 1.5, np.float32))
    with pytest.raises(ValueError, match=r"b\.tif: holds values that are not integers"):
        sample_pairs(pp, 1, steps=2, mode="mask_to_image", conditions=tmp_path/"masks")
    write_geotiff(tmp_path/"masks"/"b.tif", np.full((16, 16), 7, np.uint8))
    with pytest.raises(ValueError, match=r"b\.tif: mask values \[7\]"):
        sample_pairs(pp, 1, steps=2, mode="mask_to_image", conditions=tmp_path/"masks")
    with pytest.raises(ValueError, match="is a file"):
        sample_pairs(pp, 1, steps=2, mode="mask_to_image", conditions=tmp_path/"masks"/"a.tif")
    p = sample_pairs(pp, 2, steps=2, mode="mask_to_image", conditions=np.zeros((2, 16, 16), np.int64))  # numpy masks
    assert (p.masks == 0).all()

@pytest.mark.parametrize("task", ["seg", "change"])
def test_every_mode_with_v_prediction(tmp_path, task):
    "A v-prediction model (the main job's default since the quality-per-minute study) samples every mode of its task, with guidance; given parts come back as given."
    from typing import get_args
    from specdm.sampling import SamplingMode, given_parts, needs_conditions
    m = load_ldm(write_test_checkpoint(tmp_path/"ck", task=task, per_part=True, parameterization="v"))
    assert m.diffusion.parameterization == "v"
    real = sample_pairs(m, 2, steps=3, seed=0)
    for mode in get_args(SamplingMode):
        try: given = given_parts(mode, task)
        except ValueError: continue  # a mode of the other task
        p = sample_pairs(m, 2, steps=3, seed=1, mode=mode, conditions=real if needs_conditions(mode) else None,
                         guidance_scale=1.0 if mode == "joint" else 2.0)
        assert torch.isfinite(p.images).all() and p.info["mode"] == mode, mode
        if "mask" in given: assert torch.equal(p.masks, real.masks), mode
        if "date1" in given: assert torch.equal(p.dates[0], real.dates[0]), mode
        if "image" in given: assert torch.equal(p.images, real.images), mode
