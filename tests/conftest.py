import os
# Before anything imports torch: one thread per test process, waiting OpenMP threads that sleep (see tests/run.sh).
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path
import pytest
import torch
from specdm.core import set_threads
set_threads() # OMP_NUM_THREADS, also when a plugin imported torch first

def _data_dir():
    d = os.environ.get("SPECDM_DATA")
    if d: return Path(d)
    here = Path(__file__).resolve().parents[2]/"shared"/"data"
    return here if here.is_dir() else None

@pytest.fixture(scope="session")
def shared_data():
    "The folder of real data (oscd/, sen1floods11/, segmunich_sample/); tests using it skip when it is absent."
    d = _data_dir()
    if d is None or not d.is_dir(): pytest.skip("real data folder not available (set SPECDM_DATA)")
    return d
