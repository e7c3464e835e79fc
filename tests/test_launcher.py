"""Tests of the launcher, reconciliation and device choice with real subprocesses.

The stand-in worker below is a real process that uses the store as the real worker does: it
marks the run running, logs metrics and heartbeats, and reports a final status on SIGTERM.
It starts in a fraction of a second because it imports no torch. The real worker runs end to end
in test_launcher_worker.py.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import make_url

from workbench.devices import GpuInfo, choose_devices, cuda_visible_devices, parse_gpu_query, parse_gpu_setting, query_gpus
from workbench.errors import DeviceError, LaunchFailed, RemoteRun, RunNotActive
from workbench.launcher import Launcher
from workbench.reconcile import ProcessState, process_state, reconcile_runs
from workbench.store import RunStatus, Store
from workbench.store.models import utc_now

STAND_IN_WORKER = """
import argparse, signal, sys, time
from workbench.store import RunStatus, Store
from workbench.store.models import utc_now
parser = argparse.ArgumentParser()
parser.add_argument("--db")
parser.add_argument("--run-id", type=int)
args = parser.parse_args()
store = Store(args.db)
store.update_run(args.run_id, status=RunStatus.RUNNING, started_at=utc_now())
stop = []
signal.signal(signal.SIGTERM, {handler})
steps = {steps}
step = 0
while not stop and step < steps:
    step += 1
    store.log_metrics(args.run_id, step, {{"train_loss": 1.0 / step}})
    store.record_heartbeat(args.run_id, step)
    print(f"step {{step}}", flush=True)
    time.sleep(0.05)
store.finish_run(args.run_id, RunStatus.STOPPED if stop else RunStatus.COMPLETED)
"""


def stand_in(steps: int = 10**6, ignore_sigterm: bool = False) -> list[str]:
    handler = "signal.SIG_IGN" if ignore_sigterm else "lambda *_: stop.append(1)"
    return [sys.executable, "-c", STAND_IN_WORKER.format(steps=steps, handler=handler)]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "experiments.db")
    opened.create_experiment("exp", "exp_id: exp\n")
    yield opened
    opened.close()


def launch(store: Store, command: list[str], devices: tuple[int, ...] = (), grace: float = 10.0) -> tuple[Launcher, int]:
    launcher = Launcher(store, worker_command=command, stop_grace_s=grace)
    run = store.create_run("exp", total_steps=10)
    launcher.start(run, list(devices))
    return launcher, run.id


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def test_command_single_process(store: Store) -> None:
    launcher = Launcher(store)
    assert launcher.command(7, []) == [
        sys.executable, "-m", "workbench.worker", "--db", store.url_text, "--run-id", "7",
    ]  # fmt: skip


def test_command_torchrun_for_two_gpus(store: Store) -> None:
    command = Launcher(store).command(7, [0, 1])
    assert command[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert command[6:9] == ["-m", "workbench.worker", "--db"]


def test_command_hides_password(tmp_path: Path) -> None:
    url = make_url("postgresql://user:secret@localhost/workbench")
    fake_store = SimpleNamespace(url=url, url_text=url.render_as_string(), workdir=tmp_path)
    launcher = Launcher(fake_store)  # type: ignore[arg-type]
    command = launcher.command(3, [])
    assert "--db" not in command
    assert not any("secret" in part for part in command)
    assert launcher.environment([])["WORKBENCH_DB"] == "postgresql://user:secret@localhost/workbench"


def test_environment_devices(store: Store) -> None:
    launcher = Launcher(store)
    assert launcher.environment([])["CUDA_VISIBLE_DEVICES"] == ""
    assert launcher.environment([2, 3])["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert launcher.environment([0])["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_run_dir_layout(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_CHECKPOINTS", raising=False)
    assert Launcher(store).run_dir("exp", 4) == tmp_path / "checkpoints" / "exp" / "4"
    assert Launcher(store, checkpoint_root=tmp_path / "ck").run_dir("exp", 4) == tmp_path / "ck" / "exp" / "4"


def test_launch_runs_to_completion(store: Store, tmp_path: Path) -> None:
    launcher, run_id = launch(store, stand_in(steps=3))
    run = launcher.wait(run_id, timeout=30)
    assert run.status is RunStatus.COMPLETED
    assert run.last_step == 3
    assert run.pid is not None
    assert run.process_started_at is not None
    assert run.host == launcher.host
    assert run.devices == []
    assert run.run_dir == str(tmp_path / "checkpoints" / "exp" / str(run_id))
    assert launcher.exit_code(run_id) == 0
    assert "step 3" in (Path(run.run_dir) / "run.log").read_text()
    assert [step for step, _ in store.metric_curve(run_id, "train_loss")] == [1, 2, 3]


def test_run_in_own_session(store: Store) -> None:
    launcher, run_id = launch(store, stand_in())
    run = store.get_run(run_id)
    try:
        assert os.getsid(run.pid) == run.pid
        assert os.getpgid(run.pid) == run.pid
        assert os.getsid(run.pid) != os.getsid(0)
    finally:
        launcher.stop(run_id, grace_s=10)


def test_stop_sends_sigterm(store: Store) -> None:
    launcher, run_id = launch(store, stand_in())
    wait_for(lambda: store.get_run(run_id).last_step >= 2)
    run = launcher.stop(run_id)
    assert run.status is RunStatus.STOPPED
    assert launcher.exit_code(run_id) == 0
    assert process_state(run.pid, run.process_started_at) is ProcessState.GONE


def test_stop_during_startup(store: Store) -> None:
    launcher, run_id = launch(store, stand_in())
    run = launcher.stop(run_id)
    assert run.status is RunStatus.STOPPED
    assert launcher.exit_code(run_id) in (0, -signal.SIGTERM)


def test_stop_escalates_to_sigkill(store: Store) -> None:
    launcher, run_id = launch(store, stand_in(ignore_sigterm=True), grace=0.5)
    wait_for(lambda: store.get_run(run_id).last_step >= 1)
    run = launcher.stop(run_id)
    assert run.status is RunStatus.STOPPED
    assert run.message.startswith("killed with SIGKILL 0.5 s after SIGTERM")
    assert launcher.exit_code(run_id) == -signal.SIGKILL


def test_stop_finished_run_rejected(store: Store) -> None:
    launcher, run_id = launch(store, stand_in(steps=1))
    launcher.wait(run_id, timeout=30)
    with pytest.raises(RunNotActive, match=f"run {run_id} is already completed"):
        launcher.stop(run_id)


def test_stop_unstarted_run(store: Store) -> None:
    run = store.create_run("exp")
    stopped = Launcher(store).stop(run.id)
    assert stopped.status is RunStatus.STOPPED
    assert stopped.message == "stopped before its process started"


def test_stop_remote_run_rejected(store: Store) -> None:
    run = store.create_run("exp")
    store.update_run(run.id, status=RunStatus.RUNNING, host="gpu-box-7", pid=12345)
    with pytest.raises(RemoteRun, match="runs on host gpu-box-7"):
        Launcher(store).stop(run.id)


def test_kill9_with_exit_code_fails(store: Store) -> None:
    launcher, run_id = launch(store, stand_in())
    wait_for(lambda: store.get_run(run_id).status is RunStatus.RUNNING)
    os.kill(store.get_run(run_id).pid, signal.SIGKILL)
    wait_for(lambda: launcher.exit_code(run_id) is not None)
    (changed,) = launcher.reconcile()
    assert changed.id == run_id
    assert changed.status is RunStatus.FAILED
    assert changed.exit_code == -9
    assert "exited with code -9" in changed.message


def test_kill9_without_handle_is_lost(store: Store) -> None:
    launcher, run_id = launch(store, stand_in())
    wait_for(lambda: store.get_run(run_id).status is RunStatus.RUNNING)
    run = store.get_run(run_id)
    os.kill(run.pid, signal.SIGKILL)
    wait_for(lambda: process_state(run.pid, run.process_started_at) is ProcessState.GONE)
    # Another process (a second CLI call) has no handle on the worker, so no exit code.
    (changed,) = reconcile_runs(store)
    assert changed.status is RunStatus.LOST
    assert "exit code is unknown" in changed.message
    launcher.exit_code(run_id)  # reap the zombie


def test_reused_pid_is_lost(store: Store) -> None:
    run = store.create_run("exp")
    store.update_run(
        run.id, status=RunStatus.RUNNING, host=Launcher(store).host, pid=os.getpid(),
        process_started_at=time.time() - 3600,
    )  # fmt: skip
    (changed,) = reconcile_runs(store)
    assert changed.status is RunStatus.LOST
    assert "pid reused" in changed.message


def test_live_process_untouched(store: Store) -> None:
    import psutil

    run = store.create_run("exp")
    me = psutil.Process()
    store.update_run(run.id, status=RunStatus.RUNNING, host=Launcher(store).host, pid=me.pid, process_started_at=me.create_time())
    assert reconcile_runs(store) == []
    assert store.get_run(run.id).status is RunStatus.RUNNING


def test_remote_run_judged_by_heartbeat(store: Store) -> None:
    fresh = store.create_run("exp")
    stale = store.create_run("exp")
    now = utc_now()
    store.update_run(fresh.id, status=RunStatus.RUNNING, host="elsewhere", pid=1, heartbeat_at=now - timedelta(seconds=10))
    store.update_run(stale.id, status=RunStatus.RUNNING, host="elsewhere", pid=1, heartbeat_at=now - timedelta(seconds=400))
    changed = reconcile_runs(store, stale_after_s=300, now=now)
    assert [run.id for run in changed] == [stale.id]
    assert changed[0].status is RunStatus.LOST
    assert changed[0].message == "no heartbeat from host elsewhere for 400 s"
    assert store.get_run(fresh.id).status is RunStatus.RUNNING


def test_queued_never_started_is_lost(store: Store) -> None:
    run = store.create_run("exp")
    assert reconcile_runs(store, stale_after_s=300) == []
    (changed,) = reconcile_runs(store, stale_after_s=300, now=utc_now() + timedelta(seconds=301))
    assert changed.id == run.id
    assert changed.status is RunStatus.LOST


def test_checkpoint_root_from_environment(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert Launcher(store).run_dir("exp", 2) == tmp_path / "elsewhere" / "exp" / "2"


def test_launch_in_memory_store_rejected() -> None:
    memory = Store("sqlite://")
    memory.create_experiment("exp", "exp_id: exp\n")
    run = memory.create_run("exp")
    with pytest.raises(LaunchFailed, match="cannot open an in-memory store"):
        Launcher(memory).start(run, [])
    assert memory.get_run(run.id).status is RunStatus.FAILED


def test_launch_failure_marks_failed(store: Store) -> None:
    launcher = Launcher(store, worker_command=["/nonexistent/python"])
    run = store.create_run("exp")
    with pytest.raises(LaunchFailed, match=f"run {run.id}: could not start /nonexistent/python"):
        launcher.start(run, [])
    assert store.get_run(run.id).status is RunStatus.FAILED


NVIDIA_SMI_OUTPUT = "0, 70000, 81559, 95\n1, 500, 81559, 0\n2, 300, 81559, [N/A]\n"


def test_parse_gpu_query() -> None:
    gpus = parse_gpu_query(NVIDIA_SMI_OUTPUT)
    assert gpus[0] == GpuInfo(0, 70000.0, 81559.0, 95.0)
    assert gpus[2].utilization_percent == 0.0
    with pytest.raises(DeviceError, match="expected 4 comma-separated fields"):
        parse_gpu_query("0, 1\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cpu", "cpu"), ("AUTO", "auto"), (1, [1]), ("0,2", [0, 2]), ("[3]", [3]), ([1, 0], [1, 0])],
)
def test_parse_gpu_setting(value, expected) -> None:
    assert parse_gpu_setting(value) == expected


@pytest.mark.parametrize("value", ["gpu0", -1, [0, 0], [], True, "0,x"])
def test_parse_gpu_setting_invalid(value) -> None:
    with pytest.raises(DeviceError, match="invalid gpu"):
        parse_gpu_setting(value)


def test_choose_auto_least_loaded_free() -> None:
    gpus = parse_gpu_query(NVIDIA_SMI_OUTPUT)
    assert choose_devices("auto", gpus=gpus) == [2]
    assert choose_devices("auto", gpus=gpus, busy={2}) == [1]
    with pytest.raises(DeviceError, match="found no free GPU"):
        choose_devices("auto", gpus=gpus, busy={0, 1, 2})


def test_choose_explicit_and_cpu() -> None:
    gpus = parse_gpu_query(NVIDIA_SMI_OUTPUT)
    assert choose_devices("cpu", gpus=gpus) == []
    assert choose_devices([0, 1], gpus=gpus) == [0, 1]
    with pytest.raises(DeviceError, match="GPU 5 not found on this host"):
        choose_devices(5, gpus=gpus)


def test_choose_without_nvidia_smi() -> None:
    assert choose_devices("auto", gpus=None, query=False) == []
    assert choose_devices(1, gpus=None, query=False) == [1]
    assert cuda_visible_devices([]) == ""


def test_query_gpus_runs_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/arguments\nprintf '{NVIDIA_SMI_OUTPUT}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    gpus = query_gpus()
    assert [gpu.index for gpu in gpus] == [0, 1, 2]
    assert (tmp_path / "arguments").read_text().split() == [
        "--query-gpu=index,memory.used,memory.total,utilization.gpu", "--format=csv,noheader,nounits",
    ]  # fmt: skip
    assert choose_devices("auto") == [2]


def test_query_gpus_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert query_gpus() is None
