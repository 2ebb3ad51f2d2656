"""Shell job sweeps (parallelize.jobs) on the local queue: real bash scripts, real processes, real files.

The same sweeps on a real Slurm and Grid Engine are in tests/test_jobs_cluster.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import parallelize.jobs as ps
from parallelize import ConfigError, TaskTimeoutError, params_hash

# The seed's README example (param_search), with only its import line changed.
SEED_EXAMPLE = textwrap.dedent(
    """
    import parallelize.jobs as ps

    # define a basic job template and name format
    template = \'\'\'\\
    #!/bin/bash
    #SBATCH --job-name={job_name}
    #SBATCH -o %J.stdout
    #SBATCH -e %J.stderr
    pwd
    product=`python3 -c "print({term1}*{term2})"`
    quotient=`python3 -c "print({term1}/{term2})"`

    echo "product quotient" > {job_name}.metrics
    echo "$product $quotient" >> {job_name}.metrics
    \'\'\'
    name = 'job_{term1}_{term2}'

    # define the ranges of parameters to evaluate
    param_space = ps.ParamSpace(term1=range(4), term2=range(4))

    # submit jobs for each parameter setting
    jobs = ps.submit(template, name, param_space, use=USE)

    # check the stdout and stderr
    print(jobs.iloc[0].stdout)
    print(jobs.iloc[0].stderr)

    # read in output metrics
    metrics = ps.metrics(jobs)

    # plot metrics against parameters
    fig = ps.plot(metrics, x=['term1', 'term2'], y=['product', 'quotient'])
    """
)


def run_seed_example(folder: Path, use: str) -> subprocess.CompletedProcess[str]:
    script = folder / "example.py"
    script.write_text(SEED_EXAMPLE.replace("use=USE", f"use={use!r}") + "\nfig.savefig('sweep.png')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=300, env=env
    )


def check_seed_results(folder: Path) -> None:
    """The 16 jobs' products and quotients; the 4 that divide by zero keep their rows, error in stderr."""
    jobs = ps.wait(ps.load(folder), timeout=120)
    assert len(jobs) == 16 and set(jobs["status"]) == {"COMPLETED"}
    metrics = ps.metrics(jobs)
    assert len(metrics) == 16
    for row in metrics.itertuples():
        assert row.product == row.term1 * row.term2
        if row.term2 == 0:
            assert pd.isna(row.quotient)
        else:
            assert row.quotient == pytest.approx(row.term1 / row.term2)
    by_divisor = jobs.set_index("job_name")
    for t1 in range(4):
        assert "ZeroDivisionError" in by_divisor.loc[f"job_{t1}_0", "stderr"]
        assert by_divisor.loc[f"job_{t1}_1", "exit_code"] == 0  # stderr output alone is no failure
    assert (folder / "sweep.png").stat().st_size > 10_000


def test_the_seed_readme_example_runs_on_the_local_queue(tmp_path: Path) -> None:
    done = run_seed_example(tmp_path, "local")
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "job_0_0") in done.stdout  # jobs.iloc[0].stdout: the job ran in its own folder
    check_seed_results(tmp_path)


# -- templates and names ----------------------------------------------------------------------

ECHO = "#!/bin/bash\necho {a} {b}\n"


def test_a_placeholder_a_point_lacks_is_named_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\{c\}.*'a', 'b'.*nothing was submitted"):
        ps.submit("echo {a} {c}\n", "j_{a}_{b}", ps.ParamSpace(a=[1, 2], b=3), work_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"job name format's placeholder \{lr\}"):
        ps.submit(ECHO, "j_{lr}", ps.ParamSpace(a=[1, 2], b=3), work_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_two_points_with_one_job_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"both give the job name 'j_1'.*\{hash\}"):
        ps.submit(ECHO, "j_{a}", ps.ParamSpace(a=1, b=[1, 2]), work_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"job name 'j_x y' .*letters, digits"):
        ps.submit(ECHO, "j_{a}", [{"a": "x y", "b": 1}], work_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_hash_is_the_stable_params_hash_in_names_and_templates(tmp_path: Path) -> None:
    space = ps.ParamSpace(a=[1, 2], b="x")
    jobs = ps.wait(
        ps.submit("#!/bin/bash\necho {hash} {job_name} {work_dir}\n", "run_{hash}", space, work_dir=tmp_path)
    )
    for row in jobs.itertuples():
        h = params_hash({"a": row.a, "b": row.b})
        assert row.job_name == f"run_{h}"
        assert row.stdout.split() == [h, row.job_name, str(tmp_path / row.job_name)]
    # The same in another interpreter, whatever its hash seed.
    code = "import parallelize.jobs as ps; print(ps.params_hash({'a': 1, 'b': 'x'}))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "123"}
    )
    assert other.stdout.strip() == params_hash({"a": 1, "b": "x"})


def test_each_job_has_its_folder_with_the_filled_script(tmp_path: Path) -> None:
    jobs = ps.wait(ps.submit(ECHO, "j_{a}", ps.ParamSpace(a=[1, 2], b=7), work_dir=tmp_path))
    assert list(jobs.columns) == ["a", "b", "job_name", "job_id", "work_dir", "status", "exit_code", "stdout", "stderr"]
    for row in jobs.itertuples():
        folder = Path(row.work_dir)
        assert folder == tmp_path / row.job_name
        script = (folder / "job.sh").read_text()
        assert script.startswith("#!/bin/bash\n") and f"echo {row.a} 7" in script
        assert row.stdout == f"{row.a} 7\n" and row.status == "COMPLETED" and row.exit_code == 0


# -- status, exit codes, wait, cancel, load --------------------------------------------------------


def test_a_non_zero_exit_is_a_failure_with_its_code_stderr_alone_is_not(tmp_path: Path) -> None:
    template = "#!/bin/bash\necho warning >&2\nexit {code}\n"
    jobs = ps.wait(ps.submit(template, "j_{code}", ps.ParamSpace(code=[0, 3]), work_dir=tmp_path))
    by = jobs.set_index("code")
    assert by.loc[0, "status"] == "COMPLETED" and by.loc[0, "exit_code"] == 0 and by.loc[0, "stderr"] == "warning\n"
    assert by.loc[3, "status"] == "FAILED" and by.loc[3, "exit_code"] == 3


def test_cancel_stops_running_jobs_and_those_still_waiting(tmp_path: Path) -> None:
    template = "#!/bin/bash\nsleep {s}\necho done\n"
    jobs = ps.submit(template, "j_{s}", ps.ParamSpace(s=[30, 31, 32]), work_dir=tmp_path, max_running=1)
    deadline = time.monotonic() + 30
    while "RUNNING" not in set(ps.status(jobs)["status"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    jobs = ps.cancel(jobs)
    start = time.monotonic()
    jobs = ps.wait(jobs, timeout=20)
    assert time.monotonic() - start < 10
    assert list(jobs["status"]) == ["CANCELLED"] * 3
    assert all("done" not in out for out in jobs["stdout"])
    assert not (tmp_path / "j_32" / "local.pid").exists()  # the waiting ones never started


def test_wait_with_a_timeout_says_how_many_still_run(tmp_path: Path) -> None:
    jobs = ps.submit("#!/bin/bash\nsleep 20\n", "j_{a}", ps.ParamSpace(a=[1, 2]), work_dir=tmp_path)
    try:
        with pytest.raises(TaskTimeoutError, match=r"2 of 2 job\(s\) still queued or running after 0.5 s"):
            ps.wait(jobs, timeout=0.5)
    finally:
        ps.cancel(jobs)


def test_a_sweep_is_reopened_from_its_folder_after_the_submitter_is_gone(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import parallelize.jobs as ps
        ps.submit("#!/bin/bash\\nsleep 1\\necho {{x}}\\n", "j_{{x}}", ps.ParamSpace(x=[1, 2, 3]),
                  work_dir={str(tmp_path)!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)  # returns at once
    jobs = ps.wait(ps.load(tmp_path), timeout=60)
    assert list(jobs["x"]) == [1, 2, 3]
    assert list(jobs["stdout"]) == ["1\n", "2\n", "3\n"] and set(jobs["status"]) == {"COMPLETED"}


def test_names_the_folder_has_are_refused_unless_overwrite(tmp_path: Path) -> None:
    space = ps.ParamSpace(x=[1, 2])
    ps.wait(ps.submit("#!/bin/bash\necho first {x}\n", "j_{x}", space, work_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"already has job\(s\) named \['j_1', 'j_2'\].*overwrite=True"):
        ps.submit("#!/bin/bash\necho second {x}\n", "j_{x}", space, work_dir=tmp_path)
    again = ps.wait(ps.submit("#!/bin/bash\necho second {x}\n", "j_{x}", space, work_dir=tmp_path, overwrite=True))
    assert list(again["stdout"]) == ["second 1\n", "second 2\n"]
    more = ps.wait(ps.submit("#!/bin/bash\necho {x}\n", "k_{x}", ps.ParamSpace(x=[3]), work_dir=tmp_path))
    assert list(more["job_name"]) == ["k_3"]
    assert list(ps.load(tmp_path)["job_name"]) == ["j_1", "j_2", "k_3"]  # the folder's whole sweep


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    space = ps.ParamSpace(x=[1])
    with pytest.raises(
        ConfigError, match=r"use='condor' is not a queue; expected one of \['slurm', 'sge', 'pbs', 'local'\]"
    ):
        ps.submit("echo {x}\n", "j_{x}", space, use="condor", work_dir=tmp_path)
    with pytest.raises(ConfigError, match="takes no scheduler resources"):
        ps.submit(ECHO, "j_{x}", [{"x": 1, "a": 1, "b": 2}], work_dir=tmp_path, resources={"time": "1:00"})
    with pytest.raises(ConfigError, match="expected the jobs table"):
        ps.status([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="holds no sweep"):
        ps.load(tmp_path / "nothing")


def test_the_job_script_keeps_its_directives_first(tmp_path: Path) -> None:
    template = "#!/bin/bash\n#SBATCH --time=1:00\n#SBATCH -o out.txt\n\necho hi\n"
    jobs = ps.wait(ps.submit(template, "j_{x}", ps.ParamSpace(x=[1]), work_dir=tmp_path))
    lines = (Path(jobs.iloc[0].work_dir) / "job.sh").read_text().splitlines()
    assert lines[:3] == ["#!/bin/bash", "#SBATCH --time=1:00", "#SBATCH -o out.txt"]
    assert "trap _pz_exit EXIT" in lines and lines[-1] == "echo hi"
    record = json.loads((Path(jobs.iloc[0].work_dir) / "job.json").read_text())
    assert record["params"] == {"x": 1} or record["params"]["x"] is not None


def test_the_options_a_script_sets_itself_are_found_and_an_array_drops_its_own() -> None:
    from parallelize.jobs.queues import _resolve, _value, _without

    flags = ["--time=5", "-o", "%J.stdout", "--error=%x-%j.err", "-J", "n", "-N", "2"]
    assert _value(flags, ("-o", "--output")) == "%J.stdout"
    assert _value(flags, ("-e", "--error")) == "%x-%j.err"
    assert _value(["-ofile.txt"], ("-o", "--output")) == "file.txt"
    assert _value(flags, ("-x",)) is None
    own = ("-J", "--job-name", "-o", "--output", "-e", "--error", "-a", "--array")
    assert _without(flags, own) == ["--time=5", "-N", "2"]
    assert _without(["-cwd", "-l", "h_rt=1", "-N", "x"], ("-N", "-cwd")) == ["-l", "h_rt=1"]
    assert _resolve("%J.stdout", Path("/w"), "12", "j") == "/w/12.stdout"
    assert _resolve("/logs/$JOB_NAME.$JOB_ID", Path("/w"), "12", "j") == "/logs/j.12"
