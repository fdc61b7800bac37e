"""Shared by the benchmarks: what the machine is doing while they run, and timings taken in interleaved rounds.

Every comparison runs its variants in alternating rounds (A B A B ...), so that a change in the machine's load (another
job starting, a thermal or turbo change) falls on all of them alike, and reports medians over the rounds with the ratio
of medians. `header` prints the threads, the CPU's vector units (from /proc/cpuinfo, not assumed) and the load
average; `footer` prints the load again at the end: a load above the number of usable cores during a run means the
figures were taken on a busy machine.
"""
import os, re, statistics, time

def cores_usable() -> int:
    try: return len(os.sched_getaffinity(0))
    except AttributeError: return os.cpu_count() or 1

def cpu_units() -> str:
    "CPU model and the vector / matrix units that decide kernel speed (AVX2, AVX-512, bf16, AMX), from /proc/cpuinfo."
    try: info = open("/proc/cpuinfo").read()
    except OSError: return "unknown CPU"
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = set((re.search(r"^flags\s*:\s*(.*)$", info, re.M) or re.search(r"^Features\s*:\s*(.*)$", info, re.M)).group(1).split())
    units = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "bf16", "asimd", "sve") if f in flags]
    return f"{model.group(1).strip() if model else 'CPU'} ({', '.join(units) or 'no AVX2'})"

def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"

def header(torch, what:str="") -> str:
    "One line per fact: torch and its threads, the waiting policy, the CPU, the load now."
    cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "?")()
    return "\n".join([f"{what}" if what else "",
                      f"torch {torch.__version__}: {torch.get_num_threads()} threads per process, {cores_usable()} usable cores, "
                      f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}",
                      f"CPU: {cpu_units()}; torch kernels: {cap}",
                      f"at the start: {load()}"]).lstrip("\n")

def footer() -> str: return f"at the end: {load()}"

def interleaved(fns:dict, rounds:int, warmup:int=1) -> dict:
    "Seconds per call of each function in `fns`, called in alternating rounds after `warmup` untimed rounds."
    for _ in range(warmup):
        for f in fns.values(): f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter(); f(); times[k].append(time.perf_counter() - t)
    return times

def med(ts:list) -> float: return statistics.median(ts)

def table(times:dict, base:str|None=None, unit:str="ms", per:float=1.0) -> str:
    "Median, min and max per variant, and `base`'s median / each median (> 1: faster than `base`)."
    scale = {"ms": 1e3, "s": 1.0}[unit]; base = base or next(iter(times))
    rows = []
    for k, ts in times.items():
        m = med(ts) / per
        rows.append(f"  {k:<34} median {m * scale:9.2f} {unit}  (min {min(ts) / per * scale:.2f}, max {max(ts) / per * scale:.2f}, "
                    f"n {len(ts)})" + ("" if k == base else f"  speed-up over {base}: {med(times[base]) / med(ts):.2f}x"))
    return "\n".join(rows)

def write_result(obj, path) -> None:
    "Write a benchmark's results file with `specdm.core.save_json` (atomic, strict JSON: a NaN raises before anything is written), and say where."
    from specdm.core import save_json
    save_json(obj, path); print(f"written {path}")
