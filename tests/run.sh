#!/usr/bin/env bash
# The project's whole test suite: notebooks clean and in sync with specdm/, notebook tests, pytest.
# Real data: set SPECDM_DATA to the folder holding oscd/, sen1floods11/, segmunich_sample/ (tests skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
# One torch thread per test process, and OpenMP threads that sleep while they wait: nbdev_test runs two notebooks at
# once, and a spinning thread pool beside another process slowed steps up to 17x (nbs/00_core.ipynb, "Threads").
# Set before any Python starts, so every worker and subprocess inherits it; values already set are kept.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
fail=0
echo "== notebooks clean (nbdev_clean) =="
nbdev_clean
if ! git diff --quiet -- nbs; then echo "FAIL: notebooks are not clean; run nbdev_clean and commit:"; git diff --stat -- nbs; fail=1; fi
echo "== specdm/ in sync with the notebooks (nbdev_export) =="
nbdev_export
if ! git diff --quiet -- specdm || [ -n "$(git status --porcelain -- specdm)" ]; then
  echo "FAIL: specdm/ differs from what the notebooks export; run nbdev_export and commit:"; git status --short -- specdm; fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "== docs: notebooks process for rendering (nbdev proc_nbs; Quarto itself is not needed here) =="
python -c "from nbdev.serve import proc_nbs; proc_nbs(n_workers=2)"
echo "== nbdev_test =="
nbdev_test --n_workers 2 --timing
echo "== pytest =="
python -m pytest -q tests
