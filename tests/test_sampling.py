"Synthetic-dataset writing: a run killed half-way and resumed gives exactly n samples, identical to an uninterrupted run."
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pytest
from specdm.data import folder_items, read_raster
from specdm.sampling import write_test_checkpoint

SCRIPT = textwrap.dedent('''
    import sys, torch
    from specdm.sampling import write_synthetic
    torch.set_num_threads(1)
    write_synthetic(sys.argv[1], sys.argv[2], int(sys.argv[3]), steps=20, batch_size=2)
''')

def test_killed_write_resumes_to_exactly_n(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck"); (tmp_path/"w.py").write_text(SCRIPT); n = 24
    run = lambda out: subprocess.Popen([sys.executable, str(tmp_path/"w.py"), str(ck), str(out), str(n)], stderr=subprocess.PIPE, text=True)
    a = run(tmp_path/"a"); assert a.wait() == 0, a.stderr.read()
    b = run(tmp_path/"b"); t0 = time.time()
    while time.time() - t0 < 120 and len(list((tmp_path/"b"/"img").glob("*.tif"))) < 6: time.sleep(0.02)
    os.kill(b.pid, signal.SIGKILL); b.wait()
    assert not (tmp_path/"b"/"manifest.json").exists()
    assert len(list((tmp_path/"b"/"img").glob("*.tif"))) < n, "finished before it could be killed"
    c = run(tmp_path/"b"); assert c.wait() == 0, c.stderr.read()
    files = sorted(p.name for p in (tmp_path/"b"/"img").glob("*.tif"))
    assert files == [f"syn_{i:06d}.tif" for i in range(n)]  # exactly n, none twice, none lost
    assert not list((tmp_path/"b").rglob(".*.tmp"))  # no half-written file left
    man = json.loads((tmp_path/"b"/"manifest.json").read_text()); assert len(man["files"]) == n
    for i in (0, n // 2, n - 1):
        xa, _ = read_raster(tmp_path/"a"/"img"/f"syn_{i:06d}.tif"); xb, _ = read_raster(tmp_path/"b"/"img"/f"syn_{i:06d}.tif")
        np.testing.assert_allclose(xa, xb, atol=1e-2)
    assert len(list(folder_items(tmp_path/"b", bands="rgbn", num_classes=3))) == n

def test_two_processes_write_one_manifest(tmp_path):
    ck = write_test_checkpoint(tmp_path/"ck"); (tmp_path/"w.py").write_text(SCRIPT)
    acc = Path(sys.executable).parent/"accelerate"
    r = subprocess.run([str(acc), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                        "--dynamo_backend", "no", str(tmp_path/"w.py"), str(ck), str(tmp_path/"s"), "7"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path/"s"/"manifest.json").read_text())
    assert man["processes"] == 2 and len(man["files"]) == 7 and not list((tmp_path/"s").glob("progress-*.json"))
    assert sorted(p.name for p in (tmp_path/"s"/"img").glob("*.tif")) == [f"syn_{i:06d}.tif" for i in range(7)]
