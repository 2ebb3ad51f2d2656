"""An mproc config: the parameters to sweep and the function run on each row.

Run it with ``parallelize sweep examples/mproc/MPROC_CONFIG.py --out results/``.
"""

from is_even import is_even as function  # noqa: F401  (the function to run)

CONFIG = {
    "number": list(range(100)),
    "offset": [0, 1],
    "label": ["a", "b"],
}
MODE = "combinatorial"  # or "uniform" (zip) or "random" (with N_SAMPLES, SEED)
