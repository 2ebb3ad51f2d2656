"""The parent side of a run: batches out to a backend, results back in order, failures handled.

Every entry point goes through one primitive, ``dispatch``::

    runner.map / starmap / map_rows ──┐
    runner.run, ModelEvaluator.run ───┼──> [checkpoint filter] ──> dispatch(backend, spec, items)
    runner.submit (through a Feed) ───┘                              │ Batch ──> backend ──> worker
                                                                     v
    ResultStream / Execution / futures  <── BatchResults, in order, after the error policy

========================  ==========================================================
``dispatch.py``           the engine: window, error policy, timeouts, crash isolation, retries
``feed.py``               ``Feed`` (inputs added while it runs) and ``Control`` (interrupt)
``failures.py``           a lost batch's error translated; failed batches; ``raise_failure``
``inputs.py``             slicing sequences; a space's points as value tuples
``ordering.py``           ``InOrder``: results released in input order
``batching.py``           ``BatchSizer``: batch sizes from measured task times
``stream.py``             ``ResultStream``: a lazy stream of a ``map``'s results
``execution.py``          ``Execution``: a run in a background thread, results kept
``submitter.py``          ``runner.submit``: one call, one future, through the engine
``async_stream.py``       ``runner.amap``: a ``ResultStream`` read from asyncio, off the loop
``progress.py``           the progress bar
========================  ==========================================================
"""
