__version__ = "0.0.1"

# Waiting OpenMP threads spin briefly, then yield their core: on a CPU shared with another job (a second training, a
# notebook, test workers, several Accelerate processes) threads that spin for long made a training step 17x slower,
# while threads that sleep at once (OMP_WAIT_POLICY=PASSIVE alone) made a job alone 1.1-1.6x slower on the project's
# 2-core CPU. OpenMP reads these once, when torch loads it, so they are set here: this file runs before any specdm
# module imports torch. PASSIVE with GOMP_SPINCOUNT=3000 (libgomp, the OpenMP of torch's Linux wheels: spin 3 000
# rounds, then sleep) measured as fast alone as spinning threads and 2.3x per job with two at once
# (benchmarks/shared_cpu.py; nbs/00_core.ipynb, "Threads on a shared machine"). A value the user set for either
# variable is kept, and GOMP_SPINCOUNT is set only where the user set no waiting policy (OMP_WAIT_POLICY=ACTIVE keeps
# its endless spin; PASSIVE its immediate sleep). Threads per process: `specdm.core.set_threads`.
import os as _os
if "OMP_WAIT_POLICY" not in _os.environ: _os.environ.setdefault("GOMP_SPINCOUNT", "3000")
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
del _os
