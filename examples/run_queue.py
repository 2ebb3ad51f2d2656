"""Parallelize a function: ``test_func`` runs once in each of four threads.

The ``queue`` parameter is passed automatically; whatever the function puts on
it comes back from ``runner.results()``.

Run: ``python examples/run_queue.py``
"""

from parallelize import Parallelize


def test_func(queue, foo):
    queue.put(foo)
    queue.task_done()


runner = Parallelize(threads=4)
runner.run(func=test_func, foo="Bar")

print(list(runner.results()))
# ['Bar', 'Bar', 'Bar', 'Bar']
