"""Execute the documentation notebooks in place, so that the committed notebooks show their outputs.

People read specdm's notebooks as its documentation (here and on the rendered site), so the notebooks listed in
`DOCS` are committed *executed*: their figures, printed summaries and the tables rendered from `results/` stay in the
file. This script runs each one the way `nbdev_test` does (execnb's `CaptureShell`, the notebook's folder as working
directory, `IN_TEST` set, cells flagged with one of `settings.ini`'s `tst_flags` skipped unless the flag is given with `--flags`,
`nbdev_export()` cells skipped), keeps the outputs, writes PNG figures at a modest resolution, and then runs
`nbdev_clean` on the file. Skipped cells keep no output. It stops at the first cell that raises and leaves that
notebook unchanged.

Why not papermill or `jupyter nbconvert --execute`: both run every cell, `#| slow` ones included, and know nothing of
nbdev's flags; execnb is the kernel-free shell `nbdev_test` itself uses, so a notebook that passes its tests executes
here the same way.

    python tools/execute_docs.py                 # all of DOCS, quick cells only (what nbdev_test runs)
    python tools/execute_docs.py nbs/07a_report.ipynb
    python tools/execute_docs.py nbs/10_tutorial.ipynb --as_user      # as a reader runs it: full size, IN_TEST unset
    python tools/execute_docs.py --check         # sizes only: every figure < 150 KB, all notebooks < 5 MB

Set SPECDM_DATA to the shared data folder first, so that the cells which show real data (skipped without it) show it.
"""
from __future__ import annotations
import argparse, base64, configparser, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/"nbs"
# The notebooks people read as documentation, committed executed (issue 15: light outputs).
DOCS = ["index.ipynb", "01_data.ipynb", "01a_scenes.ipynb", "03_vae.ipynb", "04_ddpm.ipynb", "06_sampling.ipynb",
        "07_metrics.ipynb", "07a_report.ipynb", "09_experiments.ipynb", "10_tutorial.ipynb"]
MAX_FIGURE = 150_000   # bytes of one PNG figure
MAX_TOTAL = 5_000_000  # bytes of all documentation notebooks together
FIG_DPI = 72           # matplotlib's screen resolution; figures keep their size in inches


def tst_flags() -> set[str]:
    "The flags `nbdev_test` skips by default (`settings.ini`'s `tst_flags`)."
    cfg = configparser.ConfigParser(); cfg.read(ROOT/"settings.ini")
    return set(cfg["DEFAULT"].get("tst_flags", "").split())


def figures(nb:dict) -> list[tuple[int, int]]:
    "(cell index, PNG size in bytes) of every image output in a notebook read as JSON."
    out = []
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []):
            d = o.get("data", {}).get("image/png")
            if d: out.append((i, len(base64.b64decode("".join(d) if isinstance(d, list) else d))))
    return out


def check(paths:list[Path]) -> list[str]:
    "Problems with the executed notebooks' outputs: errors, figures over MAX_FIGURE, the total over MAX_TOTAL."
    import json
    problems, total = [], 0
    for p in paths:
        if not p.exists(): problems.append(f"{p.name}: missing"); continue
        total += p.stat().st_size
        nb = json.loads(p.read_text())
        for i, c in enumerate(nb["cells"]):
            if any(o.get("output_type") == "error" for o in c.get("outputs", [])): problems.append(f"{p.name}: cell {i} holds an error")
        for i, n in figures(nb):
            if n > MAX_FIGURE: problems.append(f"{p.name}: cell {i} figure is {n/1e3:.0f} KB (limit {MAX_FIGURE/1e3:.0f} KB)")
    if total > MAX_TOTAL: problems.append(f"documentation notebooks are {total/1e6:.2f} MB together (limit {MAX_TOTAL/1e6:.0f} MB)")
    return problems


def execute(path:Path, run_flags:set[str]) -> float:
    "Run `path`'s cells as nbdev_test does, keeping outputs; write it back (atomically) and nbdev_clean it. Returns seconds."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import extract_directives
    from nbdev.clean import nbdev_clean
    from fastcore.basics import AttrDict
    skip = tst_flags() - run_flags
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format="png")
    shell.run(f"import matplotlib as _mpl; _mpl.rcParams['figure.dpi'] = {FIG_DPI}; del _mpl")
    t0, cwd = time.time(), os.getcwd()
    os.chdir(path.parent)
    try:
        for cell in nb.cells:
            if cell.cell_type != "code": continue
            dirs = extract_directives(AttrDict(source=cell.source), remove=False)
            if ("nbdev_export(" in cell.source or skip & dirs.keys()
                    or dirs.get("eval:", [""])[0].lower() == "false"):
                cell.outputs = []; continue
            src = cell.source
            # execnb drops a cell's printed output when its source ends with ';' (meant to hide the last value only):
            # a trailing `pass` hides the value and keeps what the cell prints
            if src.rstrip().endswith(";"): cell.source = src + "\npass"
            try: shell.cell(cell)
            finally: cell.source = src
            if shell.exc: raise RuntimeError(f"{path.name}: a cell raised; the notebook is left unchanged\n{shell.prettytb(fname=path)}")
    finally: os.chdir(cwd)
    tmp = path.with_name(f".{path.name}.tmp")
    write_nb(nb, tmp); os.replace(tmp, path)
    nbdev_clean(fname=str(path))
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="notebooks to execute (default: the documentation notebooks, DOCS)")
    ap.add_argument("--flags", nargs="*", default=[], help="flagged cells to run too (e.g. slow)")
    ap.add_argument("--as_user", action="store_true", help="run as a reader would: IN_TEST unset (full-size runs where a notebook shrinks them under test) and every flagged cell")
    ap.add_argument("--check", action="store_true", help="only check the committed outputs' sizes and errors")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS) # execute the one notebook given, in this process
    a = ap.parse_args()
    if a.one:
        if a.as_user: os.environ.pop("IN_TEST", None)
        else: os.environ["IN_TEST"] = "1" # as nbdev_test: notebooks pick their smoke-size runs from IN_TEST
        execute(Path(a.notebooks[0]).resolve(), tst_flags() if a.as_user else set(a.flags)); return
    paths = [Path(p).resolve() for p in a.notebooks] or [NBS/n for n in DOCS]
    if not a.check:
        os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        for p in paths: # one fresh process per notebook, as nbdev_test's workers
            t0 = time.time()
            r = subprocess.run([sys.executable, __file__, "--one", str(p), "--flags", *a.flags] + ["--as_user"] * a.as_user)
            if r.returncode: sys.exit(f"{p.name}: execution failed (above); its file is unchanged")
            s = time.time() - t0
            figs = figures(__import__("json").loads(p.read_text()))
            print(f"{p.name}: {s:.0f} s, {len(figs)} figures, largest {max((n for _, n in figs), default=0)/1e3:.0f} KB, "
                  f"file {p.stat().st_size/1e3:.0f} KB", flush=True)
    problems = check([NBS/n for n in DOCS] if not a.notebooks else paths)
    for m in problems: print("PROBLEM:", m)
    sys.exit(1 if problems else 0)


if __name__ == "__main__": main()
