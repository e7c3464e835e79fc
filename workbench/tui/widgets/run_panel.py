"""The run monitor's facts panel: status, progress, heartbeat, latest metrics and host load."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from workbench.tui.formatting import (
    MISSING,
    format_age,
    format_bytes,
    format_devices,
    format_eta,
    format_loss,
    format_number,
    format_rate,
    format_step,
)
from workbench.tui.run_snapshot import RunSnapshot
from workbench.tui.system import SystemReading

# A heartbeat older than this, on a run the store lists as active, is shown as a warning:
# the tracker beats every 30 s while the worker lives, so two missed beats are suspicious.
STALE_HEARTBEAT_S = 60.0
STATUS_CLASSES = ("-queued", "-running", "-completed", "-stopped", "-failed", "-diverged", "-lost", "-stale")


class RunPanel(Static):
    """Shows a ``RunSnapshot`` as label and value rows. The run state shows as a CSS class."""

    DEFAULT_CSS = """
    RunPanel { width: 34; height: 1fr; padding: 0 1; border: round $primary; }
    RunPanel.-running { border: round $success; }
    RunPanel.-queued { border: round $warning; }
    RunPanel.-failed, RunPanel.-diverged { border: round $error; }
    RunPanel.-lost, RunPanel.-stale { border: round $warning; }
    """

    def show_snapshot(self, snapshot: RunSnapshot, now: datetime) -> None:
        """Render the snapshot. ``now`` dates the heartbeat age."""
        stale = (
            snapshot.status.is_active
            and snapshot.heartbeat_at is not None
            and (now - snapshot.heartbeat_at).total_seconds() > STALE_HEARTBEAT_S
        )
        self.remove_class(*STATUS_CLASSES)
        self.add_class(f"-{snapshot.status.value}")
        self.set_class(stale, "-stale")
        self.border_title = f"run {snapshot.run_id} · {snapshot.exp_id}"
        self.update(self._facts(snapshot, now, stale))

    def show_message(self, message: str) -> None:
        """Show a single line in place of run facts, e.g. when no run is chosen."""
        self.remove_class(*STATUS_CLASSES)
        self.border_title = "run"
        self.update(Text(message))

    def _facts(self, snapshot: RunSnapshot, now: datetime, stale: bool) -> Table:
        latest = {name: value for name, (_, value) in snapshot.latest.items()}
        status = Text(snapshot.status.value, style="bold")
        if stale:
            status.append(" (stale)", style="bold")
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("status", status)
        table.add_row("step", format_step(snapshot.last_step, snapshot.total_steps))
        if snapshot.resumed_from_id is not None:
            table.add_row("resumed", f"from run {snapshot.resumed_from_id}")
        table.add_row("ETA", format_eta(snapshot.eta_seconds))
        table.add_row("heartbeat", f"{format_age(snapshot.heartbeat_at, now)} ago" if snapshot.heartbeat_at else MISSING)
        table.add_row("train loss", format_loss(latest.get("train_loss")))
        table.add_row("val loss", format_loss(latest.get("val_loss")))
        table.add_row("lr", format_number(latest.get("lr")))
        table.add_row("grad norm", format_number(latest.get("grad_norm")))
        table.add_row("tokens/s", format_rate(latest.get("tokens_per_sec")))
        table.add_row("devices", _devices(snapshot))
        for label, value in _load_rows(snapshot.system, snapshot.devices):
            table.add_row(label, value)
        if snapshot.message:
            table.add_row("message", Text(snapshot.message))
        return table


def _devices(snapshot: RunSnapshot) -> str:
    devices = format_devices(snapshot.devices)
    return f"{devices}@{snapshot.host}" if snapshot.host else devices


def _load_rows(system: SystemReading | None, devices: list[int]) -> list[tuple[str, str]]:
    if system is None:
        return [("host load", MISSING)]
    # nvidia-smi lists every GPU of the host. A run on GPUs shows only its own.
    gpus = [gpu for gpu in system.gpus if gpu.index in devices] if devices else []
    if gpus:
        memory = " ".join(f"{gpu.index}:{format_bytes(gpu.memory_used)}/{format_bytes(gpu.memory_total)}" for gpu in gpus)
        utilization = " ".join(
            f"{gpu.index}:{gpu.utilization:.0f}%" if gpu.utilization is not None else f"{gpu.index}:{MISSING}"
            for gpu in gpus
        )
        return [("GPU memory", memory), ("GPU util", utilization)]
    return [("CPU", f"{system.cpu_percent:.0f}%"), ("RAM", f"{format_bytes(system.ram_used)}/{format_bytes(system.ram_total)}")]
