"""OpenMP's wait policy: passive where other work takes cores, left alone otherwise or when the user chose."""

import json
import os
import subprocess
import sys

import pytest

from crossl import openmp
from crossl.errors import CrosslError

# Starts two busy loops, then asks for the policy in a process that has not imported torch.
_BUSY_SCRIPT = """
import json, multiprocessing, os, time
def spin():
    while True:
        pass
if __name__ == "__main__":
    loops = [multiprocessing.Process(target=spin, daemon=True) for _ in range(2)]
    for p in loops:
        p.start()
    time.sleep(0.3)
    from crossl.openmp import choose_wait_policy
    env = {}
    decided = choose_wait_policy(env, sample_seconds=0.5)
    for p in loops:
        p.terminate()
    print(json.dumps({"decided": decided, "env": env}))
"""


def _without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this process has not started OpenMP yet (the choice is only made before it does)."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)


def test_busy_cores_make_the_command_line_wait_passively() -> None:
    env = {k: v for k, v in os.environ.items() if k not in openmp.USER_VARIABLES and k != openmp.CHOICE_VARIABLE}
    out = subprocess.run([sys.executable, "-c", _BUSY_SCRIPT], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    result = json.loads(out.stdout)
    assert result == {"decided": "passive", "env": {"OMP_WAIT_POLICY": "PASSIVE"}}


def test_idle_cores_leave_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_torch(monkeypatch)
    monkeypatch.setattr(openmp, "other_busy_cores", lambda seconds, cores=None: 0.1)
    env: dict[str, str] = {}
    assert openmp.choose_wait_policy(env) == "default"
    assert env == {}


@pytest.mark.parametrize("variable", openmp.USER_VARIABLES)
def test_the_users_own_openmp_setting_wins(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    _without_torch(monkeypatch)
    env = {variable: "ACTIVE" if variable == "OMP_WAIT_POLICY" else "300000", openmp.CHOICE_VARIABLE: "passive"}
    assert openmp.choose_wait_policy(env) == "user"
    assert "OMP_WAIT_POLICY" not in env or env["OMP_WAIT_POLICY"] == "ACTIVE"


def test_nothing_changes_once_torch_has_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401  (the point: OpenMP is already up)

    env = {openmp.CHOICE_VARIABLE: "passive"}
    assert openmp.choose_wait_policy(env) == "too late"
    assert "OMP_WAIT_POLICY" not in env


def test_an_explicit_choice_skips_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_torch(monkeypatch)

    def no_sample(seconds: float, cores: object = None) -> float:
        raise AssertionError("sampled although the choice was explicit")

    monkeypatch.setattr(openmp, "other_busy_cores", no_sample)
    env = {openmp.CHOICE_VARIABLE: "passive"}
    assert openmp.choose_wait_policy(env) == "passive"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert openmp.choose_wait_policy({openmp.CHOICE_VARIABLE: "default"}) == "default"


def test_an_unknown_choice_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_torch(monkeypatch)
    with pytest.raises(CrosslError, match=r"CROSSL_OMP_WAIT='spinny': use one of auto, passive, default"):
        openmp.choose_wait_policy({openmp.CHOICE_VARIABLE: "spinny"})


def test_the_command_line_reports_an_unknown_choice_in_one_line() -> None:
    env = {**os.environ, openmp.CHOICE_VARIABLE: "spinny"}
    out = subprocess.run([sys.executable, "-c", "import sys; from crossl.cli import main; sys.exit(main(['methods']))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["crossl: error: CROSSL_OMP_WAIT='spinny': use one of auto, passive, default"]


@pytest.mark.parametrize(("jobs", "threads", "cores", "expected"), [
    (1, 2, 2, "default"),
    (2, 1, 2, "default"),
    (2, 2, 2, "passive"),
    (3, 1, 2, "passive"),
])
def test_grid_cells_wait_passively_only_when_they_share_cores(jobs: int, threads: int, cores: int, expected: str) -> None:
    assert openmp.cell_wait_policy(jobs, threads, cores) == expected


@pytest.mark.parametrize(("other_busy", "cores", "threads", "expected"), [
    (0.1, 2, 2, False),   # an idle machine
    (0.6, 2, 2, True),    # every core wanted, one partly taken
    (0.6, 4, 2, False),   # two cores to spare: the threads find free ones
    (2.6, 4, 2, True),    # fewer than two left free
])
def test_passive_only_when_fewer_cores_are_free_than_threads_start(other_busy: float, cores: int, threads: int,
                                                                   expected: bool) -> None:
    assert openmp.cores_too_busy(other_busy, cores, threads) is expected


@pytest.mark.parametrize(("environ", "expected"), [({}, 8), ({"OMP_NUM_THREADS": "2"}, 2),
                                                   ({"OMP_NUM_THREADS": "4,2"}, 4), ({"OMP_NUM_THREADS": "x"}, 8)])
def test_planned_threads_follow_omp_num_threads(environ: dict[str, str], expected: int) -> None:
    assert openmp.planned_threads(environ, 8) == expected

