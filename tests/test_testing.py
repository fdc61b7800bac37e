"""specdm.testing holds the test helpers (issue 15); their old names in specdm.data and specdm.sampling still work,
warn, and write the same files."""
import subprocess, sys, warnings

import numpy as np
import pytest
import scipy.io

import specdm.data, specdm.sampling, specdm.testing

ALIASES = [(specdm.data, "write_segmunich_fixture", dict(n=1, size=32)),
           (specdm.data, "write_oscd_fixture", dict(cities=("alpha",), size=24)),
           (specdm.data, "write_hyperspectral_fixture", dict(kind="mat", size=16)),
           (specdm.data, "write_hyperspectral_fixture", dict(kind="envi", size=16)),
           (specdm.data, "write_hyperspectral_fixture", dict(kind="tiles", size=32)),
           (specdm.sampling, "write_test_checkpoint", dict(task="change", per_part=True))]

def same_files(a, b):
    "Folders `a` and `b` hold the same files with the same contents (.mat files: the same arrays, as their headers hold a time)."
    fa, fb = (sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file()) for d in (a, b))
    assert fa == fb and fa
    for f in fa:
        if f.suffix == ".mat":
            ma, mb = scipy.io.loadmat(a/f), scipy.io.loadmat(b/f)
            assert [k for k in ma if not k.startswith("__")] == [k for k in mb if not k.startswith("__")]
            for k in ma:
                if not k.startswith("__"): np.testing.assert_array_equal(ma[k], mb[k])
        else: assert (a/f).read_bytes().replace(str(a).encode(), str(b).encode()) == (b/f).read_bytes(), f  # an ENVI header names its folder

@pytest.mark.parametrize("module,name,kw", ALIASES, ids=[f"{m.__name__}.{n}-{k.get('kind', k.get('task', ''))}" for m, n, k in ALIASES])
def test_deprecated_alias_warns_and_writes_the_same_files(tmp_path, module, name, kw):
    with pytest.warns(DeprecationWarning, match=f"specdm.testing.{name}") as rec:
        old = getattr(module, name)(tmp_path/"old", **kw)
    assert rec[0].filename == __file__  # stacklevel=2: the warning points at the caller
    new = getattr(specdm.testing, name)(tmp_path/"new", **kw)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        getattr(specdm.testing, name)(tmp_path/"again", **kw)
    assert not [w for w in again if "moved to" in str(w.message)]  # the new names do not warn
    same_files(old, new)

def test_testing_imports_alone():
    "A fresh process imports specdm.testing first (it imports data, ddpm and vae; they never import it)."
    r = subprocess.run([sys.executable, "-c", "import specdm.testing, sys; assert 'specdm.sampling' not in sys.modules"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
