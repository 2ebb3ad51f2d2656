"""Parallelizing iterative tasks: ModelEvaluator over a 2 x 29 x 105 grid.

Iterable keyword arguments become the axes of a grid (first keyword outermost);
anything else, such as ``foo='bar'``, is passed to every call as is. That is
6090 calls, split into batches and run on four threads in the background.

Run: ``python examples/model_evaluator.py``
"""

from parallelize import Parallelize
from parallelize.model_evaluator import ModelEvaluator


def test_func(depth, impurity, bins, foo):
    return (depth, impurity, bins)


evaluator = ModelEvaluator(Parallelize(4))
evaluator.run(
    func=test_func,
    impurity=["gini", "entropy"],
    depth=range(2, 31),
    bins=range(10, 1051, 10),
    foo="bar",
)

evaluator.wait()
print(evaluator.statistics())

# In grid order: impurity outermost, then depth, then bins.
results = list(evaluator.results(ordered=True))
print(len(results))
print(results[903:908])
# [(10, 'gini', 640), (10, 'gini', 650), (10, 'gini', 660), (10, 'gini', 670), (10, 'gini', 680)]
