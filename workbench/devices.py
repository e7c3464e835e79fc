"""Device choice for launched runs: the config's ``gpu`` setting to a list of GPU indices.

``gpu: cpu`` gives no GPU, an index or a list gives those GPUs, and ``gpu: auto`` gives the
least-loaded GPU that no active run of the store holds on this host, as ``nvidia-smi`` reports
it. The launcher passes the result through ``CUDA_VISIBLE_DEVICES`` (empty for CPU) with
``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so CUDA numbers the GPUs as ``nvidia-smi`` does.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Union

from workbench.errors import DeviceError

logger = logging.getLogger(__name__)

GpuSetting = Union[str, int, Sequence[int]]

NVIDIA_SMI_QUERY = "index,memory.used,memory.total,utilization.gpu"
NVIDIA_SMI_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as ``nvidia-smi`` reports it; memory in MiB, utilization in percent."""

    index: int
    memory_used_mib: float
    memory_total_mib: float
    utilization_percent: float

    @property
    def load(self) -> tuple[float, float]:
        """Sort key: memory fraction in use first, then utilization."""
        fraction = self.memory_used_mib / self.memory_total_mib if self.memory_total_mib > 0 else 1.0
        return (fraction, self.utilization_percent)


def parse_gpu_query(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu
    --format=csv,noheader,nounits`` output.

    A field that reads ``[N/A]`` (utilization of MIG instances, for one) counts as 0.
    """
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4:
            raise DeviceError(f"unexpected nvidia-smi output line {line!r}: expected 4 comma-separated fields")
        try:
            index = int(fields[0])
            used, total, utilization = (_number(field) for field in fields[1:])
        except ValueError as error:
            raise DeviceError(f"unexpected nvidia-smi output line {line!r}: {error}") from error
        gpus.append(GpuInfo(index, used, total, utilization))
    return gpus


def _number(field: str) -> float:
    return 0.0 if field.startswith("[") else float(field)


def query_gpus(executable: str = "nvidia-smi") -> list[GpuInfo] | None:
    """Return the GPUs of this host, or ``None`` when ``nvidia-smi`` is not installed."""
    path = shutil.which(executable)
    if path is None:
        return None
    command = [path, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise DeviceError(f"nvidia-smi did not respond within {NVIDIA_SMI_TIMEOUT_S:.0f} s; set gpu to an index or cpu") from error
    if result.returncode != 0:
        raise DeviceError(
            f"nvidia-smi failed with exit code {result.returncode}: {result.stderr.strip()}; "
            "set gpu to an index or cpu"
        )
    return parse_gpu_query(result.stdout)


def parse_gpu_setting(value: GpuSetting) -> str | list[int]:
    """Normalise a ``gpu`` value to ``"cpu"``, ``"auto"`` or a list of distinct indices."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("cpu", "auto"):
            return text
        parts = [part.strip() for part in text.strip("[]").split(",") if part.strip()]
        if parts and all(part.isdigit() for part in parts):
            return parse_gpu_setting([int(part) for part in parts])
        raise DeviceError(f"invalid gpu {value!r}: use cpu, auto, an index such as 0, or a list such as 0,1")
    if isinstance(value, bool):
        raise DeviceError(f"invalid gpu {value!r}: use cpu, auto, an index such as 0, or a list such as 0,1")
    if isinstance(value, int):
        value = [value]
    indices = list(value)
    if not indices or not all(isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in indices):
        raise DeviceError(f"invalid gpu {value!r}: GPU indices are non-negative integers, such as [0, 1]")
    if len(set(indices)) != len(indices):
        raise DeviceError(f"invalid gpu {value!r}: each GPU index may appear once")
    return indices


def choose_devices(
    setting: GpuSetting,
    *,
    busy: Collection[int] = (),
    gpus: list[GpuInfo] | None = None,
    query: bool = True,
) -> list[int]:
    """Return the GPU indices for a run; an empty list means CPU.

    Args:
        setting: the config's ``gpu`` value.
        busy: GPUs that active runs of the store hold on this host; ``auto`` skips them.
        gpus: the host's GPUs; queried with ``nvidia-smi`` when ``None`` and ``query`` is true.

    Raises:
        DeviceError: an index that this host lacks, or ``auto`` with every GPU busy.
    """
    parsed = parse_gpu_setting(setting)
    if parsed == "cpu":
        return []
    if gpus is None and query:
        gpus = query_gpus()

    if parsed == "auto":
        if gpus is None:
            logger.warning("gpu: auto but nvidia-smi is not installed; the run uses the CPU")
            return []
        return [_least_loaded(gpus, busy)]

    if gpus is None:
        # NOTE: without nvidia-smi the indices cannot be checked; the trainer reports the device it got.
        logger.warning("nvidia-smi is not installed, so GPU indices %s are not checked", parsed)
        return parsed
    known = {gpu.index for gpu in gpus}
    missing = [index for index in parsed if index not in known]
    if missing:
        raise DeviceError(
            f"GPU {', '.join(map(str, missing))} not found on this host (nvidia-smi lists "
            f"{sorted(known) or 'no GPUs'}); set gpu to one of those, auto or cpu"
        )
    return parsed


def _least_loaded(gpus: list[GpuInfo], busy: Collection[int]) -> int:
    free = [gpu for gpu in gpus if gpu.index not in busy]
    if not free:
        raise DeviceError(
            f"gpu: auto found no free GPU: all of {sorted(gpu.index for gpu in gpus)} are used by "
            "active runs; stop one with `workbench stop RUN`, or set gpu to an index or cpu"
        )
    chosen = min(free, key=lambda gpu: (gpu.load, gpu.index))
    logger.info("gpu: auto chose GPU %d (%.0f of %.0f MiB used)", chosen.index, chosen.memory_used_mib, chosen.memory_total_mib)
    return chosen.index


def cuda_visible_devices(devices: Sequence[int]) -> str:
    """Return the ``CUDA_VISIBLE_DEVICES`` value for ``devices``: empty hides every GPU."""
    return ",".join(str(index) for index in devices)
