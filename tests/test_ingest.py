"""Real-world files that once prepared silently wrong: one test per kind of fault, each asserting the right value.

Every fixture is written here (small GeoTIFFs and PNGs shaped like the files people report), then prepared with
`specdm.prepare.prepare` or the `specdm_prepare` command.
"""
import json, subprocess, sys, warnings

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from specdm.data import DataError, DataWarning, PreparedDataset, read_mask, write_geotiff
from specdm.prepare import prepare

B4 = ["B2", "B3", "B4", "B8"]
SPECTRA = np.array([[600, 500, 300, 150], [400, 700, 350, 3500], [1200, 1300, 1400, 2000]], float) # water, vegetation, built-up

def blocks(h=64, w=64, k=3, block=16, seed=0):
    "Class map of square blocks."
    return np.kron(np.random.default_rng(seed).integers(0, k, (h // block, w // block)), np.ones((block, block), int))

def image_of(mask, seed=0, noise=30.0):
    "(4, H, W) DN of the class spectra plus noise."
    return SPECTRA[mask].transpose(2, 0, 1) + np.random.default_rng(seed).normal(0, noise, (4,) + mask.shape)

def geotiff(path, a, dtype, *, transform=None, crs="EPSG:32631", **kw):
    "Write `a` with rasterio directly (any profile option, e.g. nodata, compression), as an export from a GIS would."
    a = np.asarray(a); a = a[None] if a.ndim == 2 else a
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", count=a.shape[0], height=a.shape[1], width=a.shape[2], dtype=dtype, crs=crs,
                       transform=transform or from_origin(500000, 5000000, 10, 10), **kw) as d:
        d.write(a.astype(dtype))
        if a.shape[0] == 4 and "mask" not in str(path.parent.name): d.descriptions = tuple(B4)
    return path

def strict_json(path):
    "dataset.json parsed as strict JSON: NaN or Infinity in it fails."
    def refuse(c): raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(path.read_text(), parse_constant=refuse)

def prep(src, out, **kw):
    kw = dict(dict(bands="B2,B3,B4,B8", class_names="water,vegetation,built", patch_size=32, val_fraction=0.0), **kw)
    return PreparedDataset(prepare("folder", out, src, **kw))

# --- 1. invalid pixels, every way a file says so ---------------------------------------------------------------------

@pytest.mark.parametrize("how", ["nodata_tag", "nan_inf", "internal_mask", "sidecar_mask", "fill_f32", "fill_i16", "fill_u16"])
def test_invalid_pixels_never_in_the_statistics(tmp_path, how):
    m = blocks(seed=1); x = image_of(m, seed=2) / 1e4 if how in ("fill_f32", "nan_inf") else image_of(m, seed=2)
    bad = np.zeros(m.shape, bool); bad[:, :8] = True # an 8-column border: 12.5 % of the pixels
    dtype = {"fill_f32": "float32", "nan_inf": "float32", "fill_i16": "int16"}.get(how, "uint16")
    fill = {"fill_f32": np.finfo(np.float32).min, "fill_i16": -32768, "fill_u16": 65535, "nodata_tag": 0}.get(how, 0)
    x = x.astype(np.float64); x[:, bad] = fill
    if how == "nan_inf": x[:, :, :4] = np.nan; x[:, :, 4:8] = np.inf
    f = geotiff(tmp_path/"src"/"img"/"t.tif", x, dtype, nodata=0 if how == "nodata_tag" else None)
    if how in ("internal_mask", "sidecar_mask"):
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=how == "internal_mask"), rasterio.open(f, "r+") as d: d.write_mask(np.where(bad, 0, 255).astype(np.uint8))
        assert (tmp_path/"src"/"img"/"t.tif.msk").exists() == (how == "sidecar_mask")
    geotiff(tmp_path/"src"/"mask"/"t.tif", m, "uint8")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always"); ds = prep(tmp_path/"src", tmp_path/"out")
    meta = strict_json(ds.path/"dataset.json")
    assert meta["ignored_pixels"]["train"] == bad.sum(), "every invalid pixel is counted as ignored"
    valid, tol = x[:, ~bad], (1e-6 if dtype == "float32" else 1.0) # integer files store the values truncated
    for k in ("lo", "hi", "min", "max", "mean"):
        v = np.array(meta["stats"][k])
        assert (v >= valid.min(1) - tol).all() and (v <= valid.max(1) + tol).all(), f"{k} {v} outside the valid data's range"
    assert np.isnan(np.array(ds.images)[ds.patches[:, 2] == 0][..., :8]).all() # the border's pixels are stored as nodata
    if how.startswith("fill_"): assert any("t.tif" in str(i.message) and "nodata" in str(i.message) for i in w), "an untagged fill is warned about"

def test_stated_nodata_and_a_band_without_data(tmp_path):
    m = blocks(seed=1); x = image_of(m, seed=2); x[:, :, :8] = 7 # 7 is this export's fill: only the user knows
    geotiff(tmp_path/"src"/"img"/"t.tif", x, "uint16"); geotiff(tmp_path/"src"/"mask"/"t.tif", m, "uint8")
    assert prep(tmp_path/"src", tmp_path/"out", nodata=7).meta["ignored_pixels"]["train"] == 64 * 8
    x[1] = 65535 # a whole band of fill (a bad band): refused by name, not a dataset with NaN statistics
    geotiff(tmp_path/"src"/"img"/"t.tif", x, "uint16")
    with pytest.raises(DataError, match=r"band\(s\) \[1\] have no valid pixel"): prep(tmp_path/"src", tmp_path/"out2")

# --- 2. radiometry declared in the file ------------------------------------------------------------------------------

def test_scale_offset_and_processing_baseline(tmp_path):
    m = blocks(seed=1); refl = image_of(m, seed=2) / 1e4
    src = tmp_path/"src"
    for name, dn, off in (("s2021", refl * 1e4, 0.0), ("s2023", refl * 1e4 + 1000, -0.1)): # PB 04.00: +1000 DN, offset −0.1
        f = geotiff(src/"img"/f"{name}.tif", dn, "uint16"); geotiff(src/"mask"/f"{name}.tif", m, "uint8")
        with rasterio.open(f, "r+") as d: d.scales, d.offsets = [1e-4] * 4, [off] * 4
    ds = prep(src, tmp_path/"out"); x, p = np.array(ds.images), ds.patches
    a, b = (x[p[:, 0] == k].mean((0, 2, 3)) for k in (0, 1))
    np.testing.assert_allclose(a, b, atol=2e-4); np.testing.assert_allclose(a, refl.mean((1, 2)), atol=2e-4) # reflectance, both scenes
    r = strict_json(ds.path/"dataset.json")["radiometry"]
    assert r["units"] == "physical" and r["applied"] == {"file": 2} and r["write_scale"] == [1e-4] * 4 and r["write_offset"] == [0.0] * 4
    # the baseline in the product name, no scale/offset: the −1000 DN offset is applied to that scene alone
    src2 = tmp_path/"src2"
    for name, dn in (("S2A_MSIL2A_20210605T105031_N0300_R051_T31UDQ", refl * 1e4), ("S2B_MSIL2A_20230105T105339_N0509_R051_T31UDQ", refl * 1e4 + 1000)):
        geotiff(src2/"img"/f"{name}.tif", dn, "uint16"); geotiff(src2/"mask"/f"{name}.tif", m, "uint8")
    ds = prep(src2, tmp_path/"out2"); x, p = np.array(ds.images), ds.patches
    np.testing.assert_allclose(x[p[:, 0] == 0].mean((0, 2, 3)), x[p[:, 0] == 1].mean((0, 2, 3)), atol=2)
    assert ds.meta["radiometry"]["units"] == "stored" and ds.meta["radiometry"]["applied"] == {"none": 1, "s2_baseline": 1}
    # one file in physical units, one as stored: refused, naming both
    with rasterio.open(src/"img"/"s2021.tif", "r+") as d: d.scales, d.offsets = [1.0] * 4, [0.0] * 4
    with pytest.raises(DataError, match="s2023.tif: declares a scale/offset .* but .*s2021.tif declares none"): prep(src, tmp_path/"out3")
    assert PreparedDataset(prepare("folder", tmp_path/"out4", src, bands="B2,B3,B4,B8", class_names="a,b,c", patch_size=32,
                                   val_fraction=0.0, radiometry="raw")).meta["radiometry"]["units"] == "stored"

# --- 3. georeferencing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["shift", "resolution", "crs"])
def test_mask_resampled_onto_the_image_grid(tmp_path, case):
    m = blocks(seed=1); src = tmp_path/"src"
    geotiff(src/"img"/"a.tif", image_of(m, seed=2), "uint16", transform=from_origin(500000, 5000000, 10, 10))
    if case == "shift": # the mask's grid starts 320 m east: its column j is the image's column j + 32
        geotiff(src/"mask"/"a.tif", m[:, 32:], "uint8", transform=from_origin(500320, 5000000, 10, 10)); want = (slice(None), slice(32, None))
    elif case == "resolution": # the mask at 20 m: each of its pixels covers 2×2 image pixels
        geotiff(src/"mask"/"a.tif", m[::2, ::2], "uint8", transform=from_origin(500000, 5000000, 20, 20)); want = (slice(None), slice(None))
    else: # the same grid expressed in another CRS (UTM 31N → UTM 32N) at 5 m: nearest neighbour recovers the labels away from edges
        from rasterio.warp import calculate_default_transform, reproject, Resampling
        t, w, h = calculate_default_transform("EPSG:32631", "EPSG:32632", 64, 64, 500000, 4999360, 500640, 5000000, resolution=5)
        dst = np.full((h, w), 255, np.uint8)
        reproject(m.astype(np.uint8), dst, src_transform=from_origin(500000, 5000000, 10, 10), src_crs="EPSG:32631", dst_transform=t, dst_crs="EPSG:32632", resampling=Resampling.nearest)
        geotiff(src/"mask"/"a.tif", dst, "uint8", transform=t, crs="EPSG:32632", nodata=255); want = (slice(2, -2), slice(2, -2))
    info = {}
    with rasterio.open(src/"img"/"a.tif") as d: like = dict(d.profile)
    y = read_mask(src/"mask"/"a.tif", like=like, info=info)
    agree = (y[want] == m[want]).mean()
    assert agree > (0.97 if case == "crs" else 0.999), f"{case}: {agree:.3f} of the labels follow the image"
    assert "resampled onto the image grid" in " ".join(info["notes"])
    ds = prep(src, tmp_path/"out", max_invalid=0.6)
    assert any("resampled" in n for n in ds.meta["items"][0]["notes"])

def test_masks_that_cannot_be_aligned_are_refused(tmp_path):
    m = blocks(seed=1); src = tmp_path/"src"
    geotiff(src/"img"/"a.tif", image_of(m, seed=2), "uint16")
    geotiff(src/"mask"/"a.tif", m, "uint8", transform=from_origin(900000, 5000000, 10, 10)) # 400 km away
    with pytest.raises(DataError, match="does not overlap"): prep(src, tmp_path/"out")
    geotiff(src/"mask"/"a.tif", m[:, :48], "uint8", crs=None, transform=from_origin(0, 0, 1, 1)) # no georeference, another size
    with pytest.raises(DataError, match="mask is 64×48"): prep(src, tmp_path/"out")

# --- 4. mask encodings -----------------------------------------------------------------------------------------------

def test_colour_binary_nodata_and_png_masks(tmp_path):
    m6 = blocks(k=6, seed=3); src = tmp_path/"rgb"
    colours = [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)]
    geotiff(src/"img"/"t.tif", image_of(m6 % 3, seed=2), "uint16"); (src/"mask").mkdir(parents=True)
    Image.fromarray(np.array(colours, np.uint8)[m6]).save(src/"mask"/"t.png")
    with pytest.raises(DataError, match="colour-coded RGB mask with 6 colours"): prep(src, tmp_path/"o1", class_names=None)
    ds = prep(src, tmp_path/"o2", class_names="imp,bld,low,tree,car,clutter", class_colours=",".join("#%02x%02x%02x" % c for c in colours))
    assert ds.meta["class_pixels"]["train"] == np.bincount(m6.ravel(), minlength=6).tolist() # every class kept exactly
    # binary 0/255, as GeoTIFF and as PNG, no class names: two classes, 255 is the target, nothing ignored
    m2 = blocks(k=2, seed=4)
    for kind in ("tif", "png"):
        s = tmp_path/kind; geotiff(s/"img"/"t.tif", image_of(m2 * 2, seed=2), "uint16")
        if kind == "tif": geotiff(s/"mask"/"t.tif", m2 * 255, "uint8")
        else: (s/"mask").mkdir(parents=True); Image.fromarray((m2 * 255).astype(np.uint8)).save(s/"mask"/"t.png")
        ds = prep(s, tmp_path/f"o_{kind}", class_names=None)
        assert ds.class_names == ["background", "foreground"] and ds.meta["params"]["mask_encoding"] == "binary_255"
        assert ds.meta["class_pixels"]["train"] == [int((m2 == 0).sum()), int(m2.sum())] and ds.meta["ignored_pixels"]["train"] == 0
    # a PNG of class indices, no class names: classes up to the largest value
    s = tmp_path/"idx"; geotiff(s/"img"/"t.tif", image_of(m2 * 2, seed=2), "uint16"); (s/"mask").mkdir(parents=True)
    Image.fromarray(m2.astype(np.uint8)).save(s/"mask"/"t.png")
    assert prep(s, tmp_path/"o_idx", class_names=None).class_names == ["class_0", "class_1"]
    # the mask's nodata tag marks unlabelled pixels: they become the ignore index
    s = tmp_path/"nd"; lab = m2.astype(np.uint8); lab[:8] = 255
    geotiff(s/"img"/"t.tif", image_of(m2 * 2, seed=2), "uint16"); geotiff(s/"mask"/"t.tif", lab, "uint8", nodata=255)
    assert prep(s, tmp_path/"o_nd", class_names="a,b").meta["ignored_pixels"]["train"] == 8 * 64

# --- 5. band identity ------------------------------------------------------------------------------------------------

WL = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"] # wavelength order, as many exports write
VEG = dict(B2=400, B3=700, B4=350, B5=1100, B6=2600, B7=3100, B8=3500, B8A=3600, B11=1800, B12=900)

def test_band_descriptions_used_or_the_assumed_order_warned(tmp_path):
    x = np.stack([np.full((32, 32), VEG[b], float) for b in WL]); src = tmp_path/"src"
    f = geotiff(src/"img"/"t.tif", x, "uint16"); geotiff(src/"mask"/"t.tif", np.zeros((32, 32)), "uint8")
    kw = dict(bands=None, class_names="vegetation", patch_size=32, val_fraction=0.0)
    with pytest.warns(DataWarning, match="assuming its 10 bands are B2, B3, B4, B8, B5"): ds = PreparedDataset(prepare("folder", tmp_path/"o1", src, **kw))
    assert ds.meta["params"]["bands_assumed"]
    with rasterio.open(f, "r+") as d: d.descriptions = tuple(WL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning); ds = PreparedDataset(prepare("folder", tmp_path/"o2", src, **kw))
    means = dict(zip([b.name for b in ds.bands], np.array(ds.images).mean((0, 2, 3))))
    assert [b.name for b in ds.bands] == WL and all(abs(means[b] - VEG[b]) < 1 for b in WL) # every band under its own name
    ds = PreparedDataset(prepare("folder", tmp_path/"o3", src, **dict(kw, bands="segmunich"))) # picked by name from the file
    assert {b.name: round(float(v)) for b, v in zip(ds.bands, np.array(ds.images).mean((0, 2, 3)))} == VEG
    r = subprocess.run(["specdm_prepare", "--layout", "folder", "--src", str(src), "--out", str(tmp_path/"o5"), "--class_names", "v",
                        "--patch_size", "32", "--val_fraction", "0", "--quiet", "--bands", "B2,B3,B4,B5,B6,B7,B8,B8A,B11,B12"], capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr # an order the user states is not warned about

@pytest.mark.parametrize("compress", ["lzw", "deflate", "zstd"])
def test_compressed_segmunich_tiles(tmp_path, compress):
    import tifffile
    from specdm.data import read_stacked_tiff
    from specdm.testing import write_segmunich_fixture
    root = write_segmunich_fixture(tmp_path/"sm", n=1, size=64, splits=("train",))
    f = root/"train"/"img"/"SegMunich_train_img_0.tif"; x = tifffile.imread(f)
    tifffile.imwrite(f, x, compression=compress)
    np.testing.assert_array_equal(read_stacked_tiff(f, count=10), np.moveaxis(x, -1, 0))
    assert len(PreparedDataset(prepare("segmunich", tmp_path/"out", root, patch_size=32))) == 4
