"""torchgeo's `OSCD` dataset reads specdm's synthetic OSCD layout as it is (its folder and file names): a 13-band change
model's set gives the written band values in torchgeo's band order and the written change mask. Skipped where torchgeo
is not installed (it is not a dependency of specdm)."""
import json

import numpy as np
import pytest
import rasterio
import torch

pytest.importorskip("torchgeo")
from torchgeo.datasets import OSCD

from specdm.data import OSCD_IMAGES, OSCD_LABELS, oscd_items
from specdm.sampling import write_synthetic
from specdm.testing import write_test_checkpoint

def _specdm_name(b:str) -> str:
    "torchgeo's band name ('B01', 'B8A') as specdm's ('B1', 'B8A')."
    return b if b.endswith("A") else f"B{int(b[1:])}"

def _by_description(folder) -> dict:
    "The band files of one date folder, read with rasterio, keyed by the band name written in each file."
    out = {}
    for f in sorted(folder.glob("*.tif")):
        with rasterio.open(f) as src: out[src.descriptions[0]] = src.read(1)
    return out

def test_torchgeo_oscd_reads_a_13_band_set(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck", task="change", bands="s2", per_part=True)
    masks = torch.zeros(2, 16, 16, dtype=torch.long); masks[0, 4:10, 2:12] = 1; masks[1, :, 9:] = 1  # known masks, both classes
    out = write_synthetic(ck, tmp_path/"syn", 2, steps=2, layout="oscd", dtype="uint16", mode="mask_to_image", conditions=masks)
    ds = OSCD(out, split="train")
    assert len(ds) == 2 and len(OSCD.all_bands) == 13
    mine = {it.name: it for it in oscd_items(out)}  # specdm's own reader, on the same folder
    assert sorted(mine) == ["syn_000000", "syn_000001"]
    for k in range(len(ds)):
        region = ds.files[k]["region"]; i = int(region.removeprefix("syn_"))
        s = ds[k]
        assert s["image"].shape == (2, 13, 16, 16) and s["mask"].shape == (1, 16, 16)
        dates = [_by_description(out/OSCD_IMAGES/region/f"imgs_{t}") for t in (1, 2)]
        want = np.stack([np.stack([d[_specdm_name(b)] for b in OSCD.all_bands]) for d in dates])  # (2, 13, H, W) by band name
        assert want.dtype == np.uint16 and len({p.tobytes() for p in want[0]}) == 13  # 13 different planes: a wrong order shows
        assert torch.equal(s["image"], torch.from_numpy(want.astype(np.float32)))
        assert torch.equal(s["mask"][0], masks[i])
        with rasterio.open(out/OSCD_LABELS/region/"cm"/f"{region}-cm.tif") as src: assert (src.read(1) - 1 == masks[i].numpy()).all()
        assert np.array_equal(mine[region].image, want.astype(mine[region].image.dtype)) and np.array_equal(mine[region].mask, masks[i].numpy())
    f = json.loads((out/"manifest.json").read_text())["files"][0]
    assert (out/f["img1_rect"]/"syn_000000_B8A.tif").samefile(out/f["img1"]/"syn_000000_B8A.tif")  # a hard link, not a copy

def test_torchgeo_oscd_refuses_a_4_band_set(tmp_path):
    "A model of fewer than 13 bands gets no imgs_N_rect folders, so torchgeo fails instead of taking files for the wrong bands."
    ck = write_test_checkpoint(tmp_path/"ck", task="change")
    out = write_synthetic(ck, tmp_path/"syn", 1, steps=2, layout="oscd", dtype="uint16")
    assert not (out/OSCD_IMAGES/"syn_000000"/"imgs_1_rect").exists() and (out/OSCD_LABELS/"syn_000000"/"cm"/"cm.png").is_file()
    with pytest.raises(IndexError): OSCD(out, split="train")
