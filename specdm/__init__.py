__version__ = "0.0.1"

# Waiting OpenMP threads spin briefly, then yield their core. On a CPU shared with another job (a second training, a
# notebook, test workers, several Accelerate processes) threads that spin long made a training step 17x slower; threads
# that sleep at once (OMP_WAIT_POLICY=PASSIVE alone, the policy before) made a job alone take 1.2-1.4x as long per step
# as spinning threads on the project's 2-core CPU. PASSIVE with GOMP_SPINCOUNT=3000 (libgomp, the OpenMP of torch's
# Linux wheels: spin 3 000 rounds, then sleep) measured about as fast alone as OpenMP's default and kept two jobs at
# once within 2.5x of one alone (benchmarks/wait_policy.py, benchmarks/shared_cpu.py; nbs/00_core.ipynb, "Threads on
# a shared machine"). Other OpenMP runtimes (macOS' libomp) ignore the count: there waiting threads sleep at once.
# OpenMP reads these once, when torch loads it, so they are set here: this file runs before any specdm module imports
# torch. A waiting policy the user set is kept, with no spin count added (ACTIVE keeps its endless spin, PASSIVE its
# immediate sleep); so is a spin count the user set. Threads per process: `specdm.core.set_threads`.
import os as _os
if not _os.environ.get("OMP_WAIT_POLICY"): # unset or empty
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if not _os.environ.get("GOMP_SPINCOUNT"): _os.environ["GOMP_SPINCOUNT"] = "3000"
del _os
