"""What runs inside a worker: the user's calls, timed and recorded, one batch at a time.

The parent ships a ``Batch`` and gets back one
``BatchResult`` (see ``parallelize.worker.batch``).
Nothing here imports the rest of parallelize but ``parallelize.errors``,
``parallelize.retry``, ``parallelize.validate``, ``parallelize.durable`` and ``parallelize.durations``, so a worker process
pays only for this package and cloudpickle.

========================  ==========================================================
``batch.py``              ``run_batch``: the loop over a batch's tasks, timeouts, retries
``calls.py``              how an item becomes a call; ``runner.submit``'s calls
``context.py``            ``worker_context()``, the per-worker initializer and shared data
``failure.py``            ``TaskFailure``: a task's exception, traceback and arguments
``grid_points.py``        a batch of a grid's points: the axes and two numbers, not a tuple per point
``mp_task.py``            what ``mp_lock`` runs in a worker: ``process(item, shared_data, init_values)``
``pickling.py``           functions pickled once and cached in each worker
``shared_array.py``       large NumPy arrays as shared read-only memory maps
``result_queue.py``       the seed API's ``queue`` argument
========================  ==========================================================
"""
