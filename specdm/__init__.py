__version__ = "0.0.1"

# Waiting OpenMP threads yield their core instead of spinning for it: on a CPU shared with another job (a second
# training, a notebook, test workers, several Accelerate processes) spinning made a training step 17x slower.
# OpenMP reads this once, when torch loads it, so it is set here: this file runs before any specdm module imports
# torch. A value the user set is kept. Threads per process: `specdm.core.set_threads` (see nbs/00_core.ipynb).
# The price, alone on a quiet 2-core CPU: the main job's stage-1 steps about 1.5x and stage-2 steps about 1.2x slower
# than with spinning threads; with the CPU to yourself, start Python with OMP_WAIT_POLICY=ACTIVE to take that back.
import os as _os
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
del _os
