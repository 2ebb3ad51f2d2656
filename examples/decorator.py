"""``@parallel``: a function that keeps working normally and gains ``map`` and ``grid``.

Run: ``python examples/decorator.py``
"""

from __future__ import annotations

from parallelize import parallel


@parallel(backend="process", workers=2)
def collatz_steps(n: int) -> int:
    """Steps the Collatz sequence from ``n`` takes to reach 1."""
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


@parallel(workers=4)
def rosenbrock(x: float, y: float, a: float = 1.0, b: float = 100.0) -> float:
    """The Rosenbrock function; its minimum is 0 at ``(a, a**2)``."""
    return (a - x) ** 2 + b * (y - x * x) ** 2


if __name__ == "__main__":
    # A plain call runs here, in this process.
    print("collatz_steps(27) =", collatz_steps(27))

    # map: every input on the worker processes, results in input order.
    steps = list(collatz_steps.map(range(1, 10_001)))
    longest = max(range(len(steps)), key=steps.__getitem__) + 1
    print(f"longest chain below 10001 starts at {longest}: {steps[longest - 1]} steps")
    print(collatz_steps.statistics())
    collatz_steps.shutdown()

    # grid: every combination of the iterable arguments (first one outermost);
    # plain values such as b=100.0 go to every call.
    xs = [i / 10 for i in range(-20, 21)]
    ys = [i / 10 for i in range(-10, 31)]
    values = list(rosenbrock.grid(x=xs, y=ys, b=100.0))
    i = min(range(len(values)), key=values.__getitem__)
    x, y = xs[i // len(ys)], ys[i % len(ys)]
    print(f"grid of {len(values)} points: minimum {values[i]:g} at x={x:g}, y={y:g}")
    rosenbrock.shutdown()
