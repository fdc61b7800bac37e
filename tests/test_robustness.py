"Fresh-process imports, killed prepares, overwrite protection."
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pytest
import specdm
from specdm.data import DataError, PreparedDataset

MODULES = sorted(p.stem for p in Path(specdm.__file__).parent.glob("*.py") if not p.stem.startswith("_"))

@pytest.mark.parametrize("mod", MODULES)
def test_module_imports_in_fresh_process(mod):
    r = subprocess.run([sys.executable, "-c", f"import specdm.{mod}"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr

SLOW_PREPARE = textwrap.dedent('''
    import sys, time, numpy as np
    from specdm.data import Item, prepare_dataset
    def items():
        rng = np.random.default_rng(0)
        for i in range(10_000):
            time.sleep(0.01)
            yield Item(f"s{i}", rng.random((3, 64, 64), dtype=np.float32), rng.integers(0, 2, (64, 64)))
    prepare_dataset(items(), sys.argv[1], task="seg", bands="rgb", class_names=["a", "b"], patch_size=32, overwrite=True)
''')

def _start_and_kill(out:Path):
    p = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, str(out)])
    t0 = time.time()
    while time.time() - t0 < 60:
        parts = list(out.parent.glob(f".{out.name}.partial-*/images.f32"))
        if parts and parts[0].stat().st_size > 200_000: break
        time.sleep(0.05)
    else: p.kill(); pytest.fail("prepare did not start writing")
    os.kill(p.pid, signal.SIGKILL); p.wait()

def test_killed_prepare_never_looks_complete(tmp_path):
    out = tmp_path/"ds"
    _start_and_kill(out)
    assert not out.exists()  # nothing at the destination
    assert list(tmp_path.glob(".ds.partial-*"))  # only a hidden partial folder
    with pytest.raises(DataError, match="folder not found"): PreparedDataset(out)

def test_killed_overwrite_keeps_previous_dataset(tmp_path):
    "A prepare killed while replacing a dataset leaves the old one intact and readable."
    from specdm.data import Item, prepare_dataset
    out = tmp_path/"ds"; rng = np.random.default_rng(1)
    items = [Item("a", rng.random((3, 64, 64), dtype=np.float32), rng.integers(0, 2, (64, 64)))]
    prepare_dataset(items, out, task="seg", bands="rgb", class_names=["a", "b"], patch_size=32)
    before = PreparedDataset(out).images[:].copy()
    _start_and_kill(out)
    np.testing.assert_array_equal(PreparedDataset(out).images[:], before)
    # the next prepare removes the dead process's partial folder
    prepare_dataset(items, out, task="seg", bands="rgb", class_names=["a", "b"], patch_size=32, overwrite=True)
    assert not list(tmp_path.glob(".ds.partial-*")) and not list(tmp_path.glob(".ds.old-*"))
