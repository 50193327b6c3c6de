"""GPU discovery behind one small interface.

This module only reports what the hardware looks like; allocation decisions belong to the
scheduler. Two backends exist:

* :class:`NvmlBackend` asks the NVIDIA driver through NVML (``pynvml`` from the optional
  ``nvml`` extra, imported lazily).
  Its indices are NVML indices, which enumerate cards in PCI bus order. The scheduler sets
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` in every job so that CUDA numbers the cards the same way.
* :class:`FakeBackend` simulates cards for tests and for machines without a GPU. Foreign
  processes are simulated through a JSON file (see :func:`write_fake_procs`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gflow.errors import InvalidInput
from gflow.extras import MissingExtra

MIB = 1024 * 1024
DEFAULT_FAKE_MEMORY_MIB = 24 * 1024
MAX_FAKE_GPUS = 64
NVIDIA_GPUS_DIR = Path("/proc/driver/nvidia/gpus")
FAKE_GPU_NAME = "Fake GPU"

_FAKE_SPEC_FIELD = "fake GPUs"
_FAKE_SPEC_EXPECTED = "a count like 4 or count x memory like 4x24G"
_PROCS_FIELD = "fake GPU process file"
_PROCS_EXPECTED = 'a JSON object like {"0": [{"pid": 4242, "used_mib": 2000}]}'


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process running on a card, whoever owns it."""

    pid: int
    used_mib: int


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """A snapshot of one card."""

    index: int
    uuid: str
    name: str
    memory_total_mib: int
    memory_used_mib: int
    processes: tuple[GpuProcess, ...]
    utilization: float | None = None
    """Share of the last sample period the card was busy, 0 to 1 (NVML; None: unknown)."""


class GpuBackend(Protocol):
    """Where GPU snapshots come from."""

    name: str

    def discover(self) -> list[GpuInfo]:
        """Return a fresh snapshot of every card, ordered by index."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _is_nvml_failure(exc: BaseException) -> bool:
    """True for errors meaning "no usable NVML": NVMLError (by name), a missing module,
    OSError."""
    if isinstance(exc, ImportError | OSError | MissingExtra):
        return True
    return any(cls.__name__ == "NVMLError" for cls in type(exc).__mro__)


def _load_pynvml(feature: str = "GPU scheduling") -> Any:
    """The NVML bindings (``nvidia-ml-py``, the ``nvml`` extra)."""
    from gflow.extras import require

    return require("pynvml", "nvml", feature)


def nvidia_driver_loaded(gpus_dir: Path = NVIDIA_GPUS_DIR) -> bool:
    """True when the NVIDIA kernel driver lists at least one card."""
    try:
        return any(gpus_dir.iterdir())
    except OSError:
        return False


class NvmlBackend:
    """Real cards, read through NVML. Indices are NVML (PCI bus order) indices."""

    name = "nvml"

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml: Any = nvml if nvml is not None else _load_pynvml()
        self._nvml.nvmlInit()
        self._open = True

    @staticmethod
    def available(nvml: Any | None = None) -> bool:
        """True if NVML can be initialised here (it is shut down again right away)."""
        try:
            lib: Any = nvml if nvml is not None else _load_pynvml()
            lib.nvmlInit()
        except Exception as exc:
            if _is_nvml_failure(exc):
                return False
            raise
        try:
            lib.nvmlShutdown()
        except Exception as exc:
            if not _is_nvml_failure(exc):
                raise
        return True

    def discover(self) -> list[GpuInfo]:
        if not self._open:
            raise RuntimeError("NVML backend is closed")
        return [self._device(index) for index in range(int(self._nvml.nvmlDeviceGetCount()))]

    def _device(self, index: int) -> GpuInfo:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        procs = tuple(
            GpuProcess(pid=int(p.pid), used_mib=int(p.usedGpuMemory or 0) // MIB)
            for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        )
        return GpuInfo(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            memory_total_mib=int(memory.total) // MIB,
            memory_used_mib=int(memory.used) // MIB,
            processes=procs,
            utilization=self._utilization(handle),
        )

    def _utilization(self, handle: Any) -> float | None:
        try:
            return int(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu) / 100
        except Exception as exc:  # not supported on every card (or by a stand-in NVML)
            if _is_nvml_failure(exc) or isinstance(exc, AttributeError):
                return None
            raise

    def close(self) -> None:
        if self._open:
            self._open = False
            self._nvml.nvmlShutdown()


class FakeBackend:
    """``count`` simulated cards; foreign processes come from ``procs_file`` if it exists."""

    name = "fake"

    def __init__(
        self, count: int, memory_mib: int | None = None, procs_file: Path | None = None
    ) -> None:
        if not 0 <= count <= MAX_FAKE_GPUS:
            raise InvalidInput(_FAKE_SPEC_FIELD, count, f"a count from 0 to {MAX_FAKE_GPUS}")
        if memory_mib is not None and memory_mib <= 0:
            raise InvalidInput("fake GPU memory", memory_mib, "a positive number of MiB")
        self.count = count
        self.memory_mib = memory_mib if memory_mib is not None else DEFAULT_FAKE_MEMORY_MIB
        self.procs_file = procs_file

    def discover(self) -> list[GpuInfo]:
        procs = self._read_procs()
        return [self._device(index, procs.get(index, ())) for index in range(self.count)]

    def _device(self, index: int, procs: tuple[GpuProcess, ...]) -> GpuInfo:
        return GpuInfo(
            index=index,
            uuid=f"GPU-fake-{index}",
            name=FAKE_GPU_NAME,
            memory_total_mib=self.memory_mib,
            memory_used_mib=sum(p.used_mib for p in procs),
            processes=procs,
        )

    def _read_procs(self) -> dict[int, tuple[GpuProcess, ...]]:
        if self.procs_file is None:
            return {}
        try:
            text = self.procs_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(_PROCS_FIELD, str(self.procs_file), _PROCS_EXPECTED) from exc
        try:
            return _parse_procs(json.loads(text), self.count)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(_PROCS_FIELD, str(self.procs_file), _PROCS_EXPECTED) from exc

    def close(self) -> None:
        pass


def _plain_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a non-negative integer: {value!r}")
    return value


def _parse_procs(data: object, count: int) -> dict[int, tuple[GpuProcess, ...]]:
    """Validate the decoded process file; indices must name existing fake cards."""
    if not isinstance(data, dict):
        raise TypeError("top level is not an object")
    result: dict[int, tuple[GpuProcess, ...]] = {}
    for key, entries in data.items():
        index = _parse_count(key)
        if index is None or index >= count:
            raise ValueError(f"no fake GPU {key!r}")
        if not isinstance(entries, list):
            raise TypeError(f"processes of GPU {key} are not a list")
        result[index] = tuple(_parse_proc(entry) for entry in entries)
    return result


def _parse_proc(entry: object) -> GpuProcess:
    if not isinstance(entry, dict) or set(entry) != {"pid", "used_mib"}:
        raise ValueError(f"bad process entry {entry!r}")
    return GpuProcess(pid=_plain_int(entry["pid"]), used_mib=_plain_int(entry["used_mib"]))


def write_fake_procs(procs_file: Path, procs: dict[int, list[GpuProcess]]) -> None:
    """Write the fake process file atomically (temporary file, then ``os.replace``)."""
    data = {
        str(index): [{"pid": p.pid, "used_mib": p.used_mib} for p in entries]
        for index, entries in sorted(procs.items())
    }
    tmp = procs_file.with_name(f".{procs_file.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, procs_file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _parse_count(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def parse_fake_spec(spec: str) -> tuple[int, int | None]:
    """Parse ``"4"`` or ``"4x24G"`` / ``"2x512M"`` into (count, memory MiB or None)."""
    count_text, sep, memory_text = spec.strip().lower().partition("x")
    count = _parse_count(count_text)
    memory = _parse_memory(memory_text) if sep else None
    if count is None or count > MAX_FAKE_GPUS or (sep and memory is None):
        raise InvalidInput(_FAKE_SPEC_FIELD, spec, _FAKE_SPEC_EXPECTED)
    return count, memory


def _parse_memory(text: str) -> int | None:
    """``"24g"`` -> 24576, ``"512m"`` -> 512; None unless a positive amount with a unit."""
    scale = {"m": 1, "g": 1024}.get(text[-1:])
    amount = _parse_count(text[:-1])
    if scale is None or amount is None or amount == 0:
        return None
    return amount * scale


def select_backend(
    fake_spec: str | None,
    procs_file: Path | None,
    *,
    nvml: Any | None = None,
    gpus_configured: bool = False,
    gpus_dir: Path = NVIDIA_GPUS_DIR,
) -> GpuBackend | None:
    """Pick the GPU backend; None means no GPUs (CPU-only scheduling).

    A fake spec (from ``GFLOW_FAKE_GPUS`` or config, as the caller decides) always wins;
    a count of 0 gives None. Otherwise NVML is used if it initialises. Without the NVML
    bindings a machine with no NVIDIA driver schedules CPU-only, but one whose driver
    lists cards (or whose configuration names GPUs) raises :class:`MissingExtra`, which
    names the extra to install: silently offering no GPUs there would be a trap.
    """
    if fake_spec is not None:
        count, memory_mib = parse_fake_spec(fake_spec)
        return FakeBackend(count, memory_mib, procs_file) if count else None
    if nvml is None:
        try:
            nvml = _load_pynvml()
        except MissingExtra:
            if nvidia_driver_loaded(gpus_dir):
                raise MissingExtra(
                    "GPU scheduling on this machine's NVIDIA cards", "nvml"
                ) from None
            if gpus_configured:
                raise MissingExtra("GPU scheduling (GPUs named by 'gpus')", "nvml") from None
            return None
    if NvmlBackend.available(nvml):
        return NvmlBackend(nvml)
    return None
