"Fast paths give the same results as the plain ones; the thread policy reaches fresh processes."
import os, subprocess, sys

import torch
from fastcore.test import test_close as close, test_eq as eq

from specdm.core import thread_count

def _fresh(code:str, **env) -> str:
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")} | env
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout.strip()

def test_wait_policy_in_fresh_process():
    "Importing any specdm module sets OMP_WAIT_POLICY=PASSIVE before torch loads; a user's value is kept."
    code = "import specdm.core, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    eq(_fresh(code), "PASSIVE")
    eq(_fresh(code, OMP_WAIT_POLICY="ACTIVE"), "ACTIVE")
    eq(_fresh("import specdm.train, os; print(os.environ['OMP_WAIT_POLICY'])"), "PASSIVE")

def test_thread_policy_in_fresh_process():
    "set_threads() in a fresh process: the cores it may use, or OMP_NUM_THREADS when set."
    code = "from specdm.core import set_threads, cores_available; print(set_threads(), cores_available())"
    n, cores = map(int, _fresh(code).split()); eq(n, cores)
    eq(_fresh(code, LOCAL_WORLD_SIZE=str(cores)).split()[0], "1")
    eq(_fresh(code, OMP_NUM_THREADS="1").split()[0], "1")
    eq(thread_count(cores=4, processes=2, env={}), 2)

def test_pytest_runs_one_thread():
    eq(torch.get_num_threads(), int(os.environ["OMP_NUM_THREADS"]))
