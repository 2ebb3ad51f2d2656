"""Parameter spaces: grids, algebra, sampling, mproc-style configs and stable hashes.

Run: ``python examples/param_space.py`` (no parallel runner needed).
"""

from __future__ import annotations

import itertools

from parallelize.distributions import loguniform, randint
from parallelize.space import ParamSpace, Space, params_hash


def show(title: str, space: Space, n: int = 3) -> None:
    print(f"\n== {title}\n{space!r}")
    try:
        print(f"len = {len(space)}")
        for i, point in enumerate(itertools.islice(space, n)):
            print(f"  [{i}] {point}")
    except TypeError as exc:  # a space with a distribution axis can only be sampled
        print(f"  (no len: {exc})")


# --- param_search style: a grid; scalars (strings too) are one-value axes
grid = ParamSpace(a=range(10), b=1e-3, c="hello", d=[True, False])
show("grid", grid)
print("  last point:", grid[-1])
print("  axis 'd':", grid["d"])

# --- algebra: + concatenates, * takes the product, n * repeats (to weight a sum)
a = ParamSpace(type="a", param=[1, 2, 3])
b = ParamSpace(type="b", param=[4, 5, 6])
c = ParamSpace(other_param=1.5)
combined = 10 * (a + b) * c
show("10 * (a + b) * c", combined)
assert len(combined) == 60

# --- sampling draws indices: reproducible with a seed, and fast on huge spaces
print("\n== sampling")
for point in grid.sample(3, seed=0):
    print("  ", point)
huge = ParamSpace(x=range(10**6), y=range(10**6))
print(f"  {huge.size:,} points; 3 distinct ones:", huge.sample(3, seed=1))
weighted = (10 * a + b).sample(1100, replace=True, seed=2)
print(f"  10 * a + b picks 'a' {sum(p['type'] == 'a' for p in weighted) / len(weighted):.0%} of the time")

# --- random search: distribution axes (or scipy.stats frozen distributions)
search = ParamSpace(lr=loguniform(1e-5, 1e-1), units=randint(16, 129), act=["relu", "tanh"])
show("random search", search)
for point in search.sample(3, seed=0):
    print("  ", point)

# --- mproc style: {name: [values]} in three modes
config = {"n_estimators": [10, 50, 100], "criterion": ["gini", "entropy", "log_loss"]}
show("from_dict uniform (zip)", ParamSpace.from_dict(config, mode="uniform"))
show("from_dict combinatorial", ParamSpace.from_dict(config, mode="combinatorial"))
show("from_dict random", ParamSpace.from_dict(config, mode="random", n_samples=4, seed=3))

# --- a stable content hash per point: the same in every process and on every machine
print("\n== params_hash")
for point in a:
    print(f"  {params_hash(point)}  {point}")
