#!/usr/bin/env python3
"""Compares `recalcd match` with stumpy (issue 15, point 5): the distance profile with
`stumpy.mass`, the top-k with `stumpy.match`, and the speed of `stumpy.mass` with the
window statistics passed in.

Usage: scripts/check_stumpy.py [path/to/recalcd]   (default target/release/recalcd, then
target/debug/recalcd). Creates a virtual environment (STUMPY_VENV, default
/tmp/recalcd-stumpy-venv) and installs stumpy from PyPI into it the first time.
STUMPY_BENCH_N sets the series length of the speed run (default 2**23; 0 skips it).
Not run by CI.

Tolerance (stated): on series of moderate offset (a random walk plus 50), the squared
distances of recalcd's MASS profile and stumpy.mass agree within 1e-6 absolute; the
top-k starts agree, and their distances within the same tolerance (recalcd's are exact).
"""

import os
import subprocess
import sys
import tempfile
import time

VENV = os.environ.get("STUMPY_VENV", "/tmp/recalcd-stumpy-venv")
TOL_SQ = 1e-6


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "stumpy"], check=True)
    os.execv(py, [py] + sys.argv)


def recalcd_binary():
    if len(sys.argv) > 1:
        return sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for profile in ("release", "debug"):
        path = os.path.join(root, "target", profile, "recalcd")
        if os.path.exists(path):
            return path
    sys.exit("build recalcd first (cargo build), or pass its path")


def write(path, values):
    with open(path, "w") as f:
        f.write("\n".join(repr(float(v)) for v in values))
        f.write("\n")


def main():
    ensure_venv()
    import json

    import numpy as np
    import stumpy

    binary = recalcd_binary()
    rng = np.random.default_rng(15)
    worst_profile = 0.0
    worst_match = 0.0
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        s_path, p_path, prof_path = (os.path.join(tmp, n) for n in ("s.csv", "p.csv", "prof.txt"))
        for case, (n, m) in enumerate([(20_000, 16), (100_000, 64), (200_000, 256), (50_000, 100)]):
            T = np.cumsum(rng.normal(size=n)) + 50.0
            if case % 2 == 0:
                at = int(rng.integers(0, n - m))
                Q = T[at : at + m] + rng.normal(scale=0.1, size=m)
            else:
                Q = np.sin(np.linspace(0, 6, m)) * 3 + 50.0
            write(s_path, T)
            write(p_path, Q)
            # stumpy excludes |i - j| <= ceil(m / denom): denom 1 means starts > m apart,
            # i.e. recalcd's --exclusion m + 1.
            stumpy.config.STUMPY_EXCL_ZONE_DENOM = 1
            out = subprocess.run(
                [binary, "match", "--series", s_path, "--pattern", p_path, "--k", "5",
                 "--exclusion", str(m + 1), "--profile-out", prof_path],
                check=True, capture_output=True, text=True,
            )
            ours = json.loads(out.stdout)["matches"]
            profile = np.loadtxt(prof_path)
            theirs = stumpy.mass(Q, T)
            diff = np.max(np.abs(profile**2 - theirs**2))
            worst_profile = max(worst_profile, diff)
            ref = stumpy.match(Q, T, max_distance=np.inf, max_matches=5)
            ref_starts = [int(r[1]) for r in ref]
            our_starts = [r["start"] for r in ours]
            dd = max(abs(r["distance"] ** 2 - float(s[0]) ** 2) for r, s in zip(ours, ref))
            worst_match = max(worst_match, dd)
            ok = diff <= TOL_SQ and ref_starts == our_starts and dd <= TOL_SQ
            checked += 1
            print(f"n={n} m={m}: profile max |d²−d²_stumpy| = {diff:.3e}; top-5 starts "
                  f"{'equal' if ref_starts == our_starts else f'DIFFER {our_starts} vs {ref_starts}'}"
                  f", distances max |Δd²| = {dd:.3e} -> {'ok' if ok else 'FAIL'}")
            if not ok:
                sys.exit(1)
    print(f"{checked} cases: profile within {worst_profile:.3e}, top-k within {worst_match:.3e} "
          f"(tolerance {TOL_SQ:g} on the squared distance)")

    n = int(os.environ.get("STUMPY_BENCH_N", str(1 << 23)))
    if n:
        m = 256
        T = np.cumsum(rng.normal(size=n))
        Q = T[n // 3 : n // 3 + m].copy()
        M_T, S_T = stumpy.core.compute_mean_std(T, m)
        stumpy.mass(Q[:m], T[: 4 * m], M_T[: 3 * m + 1], S_T[: 3 * m + 1])  # compile
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            stumpy.mass(Q, T, M_T, S_T)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(f"stumpy.mass, window statistics passed in: n = {n}, m = {m}: median "
              f"{times[1] * 1000:.0f} ms of 3 runs (stumpy {stumpy.__version__}, numpy "
              f"{np.__version__})")


if __name__ == "__main__":
    main()
