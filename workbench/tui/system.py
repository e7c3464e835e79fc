"""Host resource readings for the run monitor: GPU memory and utilisation, else CPU and RAM.

GPUs are read with ``nvidia-smi`` when it is on the PATH. ``torch.cuda`` is consulted only
when some other part of the process already imported torch, because importing it here
would cost the UI seconds at start-up. Its readings cover device memory only.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil

logger = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = "index,name,memory.used,memory.total,utilization.gpu"
NVIDIA_SMI_TIMEOUT_S = 2.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuReading:
    """One GPU: memory in bytes and utilisation in percent (``None`` when unknown)."""

    index: int
    name: str
    memory_used: float
    memory_total: float
    utilization: float | None


@dataclass(frozen=True)
class SystemReading:
    """CPU use in percent over the last interval, RAM in bytes, and the GPUs found."""

    cpu_percent: float
    ram_used: float
    ram_total: float
    gpus: list[GpuReading] = field(default_factory=list)
    gpu_source: str = "none"


class SystemProbe:
    """Reads host resources, calling ``nvidia-smi`` at most once per ``gpu_interval_s``.

    The run monitor polls every second, and each ``nvidia-smi`` call starts a process, so
    its output is reused between calls.
    """

    def __init__(self, gpu_interval_s: float = 5.0) -> None:
        self.gpu_interval_s = gpu_interval_s
        self._nvidia_smi = shutil.which("nvidia-smi")
        self._gpus: list[GpuReading] = []
        self._gpu_source = "none"
        self._gpus_read_at = -float("inf")
        # The first cpu_percent(None) call returns 0.0. Prime it so the first reading is real.
        psutil.cpu_percent(interval=None)

    def read(self) -> SystemReading:
        """Return the current readings. GPU readings may be up to ``gpu_interval_s`` old."""
        memory = psutil.virtual_memory()
        now = time.monotonic()
        if now - self._gpus_read_at >= self.gpu_interval_s:
            self._gpus, self._gpu_source = self._read_gpus()
            self._gpus_read_at = now
        return SystemReading(
            cpu_percent=psutil.cpu_percent(interval=None),
            ram_used=float(memory.total - memory.available),
            ram_total=float(memory.total),
            gpus=list(self._gpus),
            gpu_source=self._gpu_source,
        )

    def _read_gpus(self) -> tuple[list[GpuReading], str]:
        if self._nvidia_smi is not None:
            gpus = read_nvidia_smi(self._nvidia_smi)
            if gpus is not None:
                return gpus, "nvidia-smi"
        if "torch" in sys.modules:
            return read_torch_cuda(), "torch.cuda"
        return [], "none"


def read_nvidia_smi(executable: str = "nvidia-smi") -> list[GpuReading] | None:
    """Return one reading per GPU from ``nvidia-smi``, or ``None`` when the call fails."""
    command = [executable, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"]
    try:
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("nvidia-smi failed, GPU readings unavailable: %s", error)
        return None
    return parse_nvidia_smi(output)


def parse_nvidia_smi(output: str) -> list[GpuReading]:
    """Parse ``index, name, memory.used [MiB], memory.total [MiB], utilization.gpu [%]`` lines."""
    gpus = []
    for line in output.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 5:
            continue
        index, name, used, total, utilization = parts
        try:
            gpus.append(
                GpuReading(
                    index=int(index),
                    name=name,
                    memory_used=float(used) * MIB,
                    memory_total=float(total) * MIB,
                    # A GPU in a MIG mode reports "[N/A]" utilisation.
                    utilization=float(utilization) if utilization.replace(".", "", 1).isdigit() else None,
                )
            )
        except ValueError:
            logger.warning("skipped an nvidia-smi line that does not parse: %r", line)
    return gpus


def read_torch_cuda() -> list[GpuReading]:
    """Return device memory of each visible GPU from an already imported ``torch.cuda``."""
    torch = sys.modules["torch"]
    try:
        if not torch.cuda.is_available():
            return []
        readings = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            name = torch.cuda.get_device_name(index)
            readings.append(GpuReading(index, name, float(total - free), float(total), None))
        return readings
    except RuntimeError as error:
        logger.warning("torch.cuda could not read GPU memory: %s", error)
        return []
