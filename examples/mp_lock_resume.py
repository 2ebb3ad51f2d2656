"""multiprocessing_lib's ``mp_lock``: a run that crashes, and a rerun that resumes.

Run: ``python examples/mp_lock_resume.py``

The script runs itself twice. The first run is killed with SIGKILL (no cleanup
at all, as a crash or the out-of-memory killer would) right when it is about to
save its fourth batch; the second run, on the same output folder, processes
only the items whose batch was not saved, and then every item is in the output
exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from parallelize import is_completed, mp_lock

data_list = [str(i) for i in range(100)]
shared_data = {
    "some_data": 42,
    "big_model_path": "path.bin",
}


class Model:
    """A model that cannot be pickled (it holds a lock), loaded once per worker."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def process(self, data: str) -> int:
        with self._lock:
            return int(data) ** 2


def my_init(shared_data):
    ml_model = Model(shared_data["big_model_path"])
    return {"model": ml_model}


def process(data, shared_data, init_values):
    my_model = init_values["model"]
    time.sleep(0.01)  # some real work
    return my_model.process(data) + shared_data["some_data"]


saved_batches = 0


def save_callback(output_filepath, data_results, data_names):
    global saved_batches
    if CRASH_AT is not None and saved_batches + 1 == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)  # crash before this batch is saved
    with open(output_filepath + ".jsonl", "a") as fid:
        for name, result in zip(data_names, data_results, strict=True):
            fid.write(json.dumps({"data_name": name, "result": result}) + "\n")
    saved_batches += 1


CRASH_AT: int | None = None


def saved_names(out_path: str) -> list[str]:
    path = os.path.join(out_path, "data.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as fid:
        return [json.loads(line)["data_name"] for line in fid]


def main() -> None:
    global CRASH_AT
    parser = argparse.ArgumentParser(description="mp_lock, interrupted and resumed")
    parser.add_argument("--num_procs", type=int, default=2, help="Number of processes")
    parser.add_argument("--out_path", default=os.path.join(tempfile.gettempdir(), "parallelize_mp_lock_example"))
    parser.add_argument("--crash-at", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.crash_at is not None:  # the run that crashes
        CRASH_AT = args.crash_at
        mp_lock(data_list, process, save_callback, args.num_procs, args.out_path, save_batch=10,
                shared_data=shared_data, init_function=my_init)
        return

    shutil.rmtree(args.out_path, ignore_errors=True)
    print(f"output folder: {args.out_path}")
    first = subprocess.Popen(
        [sys.executable, __file__, "--out_path", args.out_path, "--num_procs", str(args.num_procs), "--crash-at", "4"],
        start_new_session=True,
    )
    first.wait()
    try:
        # A process killed with SIGKILL cannot stop its workers: stop its whole group.
        os.killpg(first.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    print(f"first run: killed by signal {-first.returncode}, "
          f"{len(saved_names(args.out_path))} of {len(data_list)} items saved")
    print(f"completed? {is_completed(data_list, args.out_path)}")

    report = mp_lock(data_list, process, save_callback, args.num_procs, args.out_path, save_batch=10,
                     shared_data=shared_data, init_function=my_init)
    print(f"second run: {report.resumed} items already done, {report.computed} processed, "
          f"{len(report.failures)} failed")
    names = saved_names(args.out_path)
    print(f"completed? {is_completed(data_list, args.out_path)}")
    print(f"every item saved exactly once: {sorted(names, key=int) == data_list}")


if __name__ == "__main__":
    main()
