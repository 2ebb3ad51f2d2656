"""The original README's three examples, exactly as written, in Python 3.

The only change to each snippet is ``print x`` -> ``print(x)``; what is printed
is compared with what the original README shows.
"""

from __future__ import annotations

import pytest


def test_parallelize_a_function(capsys: pytest.CaptureFixture[str]) -> None:
    # --- README snippet ---------------------------------------------------------
    from parallelize import Parallelize

    def test_func(queue, foo):
        queue.put(foo)
        queue.task_done()

    runner = Parallelize(threads=4)
    runner.run(func=test_func, foo="Bar")

    print(list(runner.results()))
    # --- end of snippet -----------------------------------------------------------
    try:
        assert capsys.readouterr().out == "['Bar', 'Bar', 'Bar', 'Bar']\n"
        # Unlike the original, results() is not destructive.
        assert list(runner.results()) == ["Bar", "Bar", "Bar", "Bar"]
    finally:
        runner.shutdown()


SEED_BATCHIFY_OUTPUT = """\
{'colors': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24], 'variations': ['a', 'b']}
{'colors': [25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49], 'variations': ['a', 'b']}
{'colors': [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74], 'variations': ['a', 'b']}
{'colors': [75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99], 'variations': ['a', 'b']}
"""


def test_batchify_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    # --- README snippet ---------------------------------------------------------
    from parallelize import Parallelize  # noqa: F401  (imported by the README too)
    from parallelize.batchify import Batchify

    data = {"colors": range(100), "variations": ["a", "b"]}

    batchify = Batchify(data, 4)
    for batch in batchify.results():
        print(batch)
    # --- end of snippet -----------------------------------------------------------
    assert capsys.readouterr().out == SEED_BATCHIFY_OUTPUT


def test_parallelizing_iterative_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    # --- README snippet ---------------------------------------------------------
    from parallelize import Parallelize
    from parallelize.model_evaluator import ModelEvaluator

    def test_func(depth, impurity, bins, foo):
        return (depth, impurity, bins)

    evaluator = ModelEvaluator(Parallelize(4))
    evaluator.run(func=test_func, impurity=["gini", "entropy"], depth=range(2, 31), bins=range(10, 1051, 10), foo="bar")

    evaluator.statistics()

    results = list(evaluator.results())
    print(results[903:908])
    # --- end of snippet -----------------------------------------------------------
    try:
        assert len(results) == 6090 == 2 * 29 * 105
        assert len(set(results)) == 6090
        # The README's slice came from completion order, which varies from run to
        # run; the tuples it shows are all results.
        shown = [(6, "gini", 760), (6, "gini", 770), (6, "gini", 780), (6, "gini", 790), (6, "entropy", 540)]
        assert set(shown) <= set(results)
        assert capsys.readouterr().out == f"{results[903:908]}\n"
        stats = evaluator.statistics()
        text = str(stats)
        assert text.startswith("STATISTICS\n")
        assert "size: 6090 items" in text
        lines = text.splitlines()
        assert any(line.startswith("us: ") for line in lines)
        assert any(line.startswith("ms: ") for line in lines)
        assert any(line.startswith("s: ") for line in lines)
        assert (stats.completed, stats.pending) == (6090, 0)
    finally:
        evaluator.runner.shutdown()
