"""Checkpoints: resume a run after a crash, computing only what is missing.

With ``checkpoint=FOLDER``, every finished task is written to a journal in
``FOLDER`` before its result is handed to the caller. A rerun reads the journal,
checks that the stored inputs are still the inputs at those positions, runs only
the missing positions and merges old and new results back into input order::

    input ──enumerate──> position stored? ──yes──> stored value ──────────────┐
                                │ no                                           v
                                └─> engine (only missing items) ─> journal ─> merge in
                                                                   (fsync)    input order

Folder layout:

- ``checkpoint.json``: the format version and the call mode (``map``, ``starmap``
  or keyword points), written atomically (temp file, fsync, rename).
- ``journal-<time>-<pid>-<id>.log``: one append-only file per run. Each record
  holds one finished batch (position, input hash, encoded result per task) and is
  framed by a magic tag, its length and a CRC-32, then fsync'd. A record torn by
  a crash (short, or with a wrong checksum) ends the reading of that file and is
  ignored, so its tasks simply run again; it is never mixed into results.

Anything else that is not what this module writes (a whole record with the right
checksum but the wrong content, a huge length field, JSON nested too deeply, a
foreign or missing manifest) raises ``CheckpointError``
naming the file and record, before anything runs: the reader accepts exactly
the shapes the writer produces, never recurses more than a few hundred frames
and never unpickles without ``allow_pickle``.

Results are stored as tagged JSON when they are plain data (None, bool, int,
float including nan/inf, str, bytes, complex, list, tuple, dict, set, frozenset,
and NumPy arrays and scalars of numeric, bool, datetime or string dtypes), so that
tuples stay tuples and ``1.0`` stays a float. Any other result, and plain data
nested more than ``_MAX_NESTING`` JSON levels deep or ints of over 14,000 bits,
is pickled with cloudpickle. Reading a pickle can run arbitrary code, so a
checkpoint holding pickled results is only loaded with
``Checkpoint(folder, allow_pickle=True)``; by default opening it raises
``CheckpointError`` before anything runs.

Inputs are identified by position and a content hash
(``input_hash``), the same in every process and run.
"""

from .codec import input_hash
from .journal import MANIFEST, Checkpoint
from .resume import STORED_WORKER

__all__ = ["MANIFEST", "STORED_WORKER", "Checkpoint", "input_hash"]
