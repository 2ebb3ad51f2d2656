"""What turns batch results into tables and files, and files back into a table.

Imports go one way, top to bottom (nothing here imports the engine or the runner)::

    tabular ──> frame                       to_dataframe()
           └──> files ──> columns ──> text  to_files() (files imported on first use)
                     └──> summary, folder, memory, frame, parallelize.durable
    reading ──> folder, text, frame         read_results()

========================  ==========================================================
``frame.py``              ``results_frame``: batch results as one DataFrame, row per task
``tabular.py``            ``TabularResults``: ``to_dataframe()`` / ``to_files()`` for holders
``files.py``              ``write_results``: rows to part files while the run goes on
``columns.py``            how each column of a part file is stored (as it is, or as text)
``text.py``               values and names as text with kinds, and back
``summary.py``            ``WriteSummary`` and ``Conversion``: what a write reports
``folder.py``             the layout of a results folder: part names, manifest, pyarrow
``reading.py``            ``read_results``: a results folder back into one DataFrame
``memory.py``             ``reduce_mem_usage``: smaller numeric dtypes, same values
``rows.py``               the rows of a DataFrame as tasks (``map_rows``)
========================  ==========================================================
"""
