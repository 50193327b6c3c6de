"""GPU discovery: fake backend, spec parsing, NVML backend against a stand-in."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gflow.errors import InvalidInput
from gflow.extras import MissingExtra
from gflow.gpu import (
    FakeBackend,
    GpuInfo,
    GpuProcess,
    NvmlBackend,
    parse_fake_spec,
    select_backend,
    write_fake_procs,
)

MIB = 1024 * 1024


class NVMLError(Exception):
    """Same name as pynvml's exception class."""


class NVMLError_LibraryNotFound(NVMLError):
    pass


@dataclass
class _Memory:
    total: int
    used: int


@dataclass
class _Rates:
    gpu: int
    memory: int


@dataclass
class _Proc:
    pid: int
    usedGpuMemory: int | None


class FakeNvml:
    """Emulates the parts of the pynvml module that gflow.gpu uses."""

    NVMLError = NVMLError

    def __init__(self, init_error: Exception | None = None) -> None:
        self.init_error = init_error
        self.calls: list[str] = []
        self.devices: list[dict[str, Any]] = [
            {
                "name": b"NVIDIA A100-SXM4-40GB",
                "uuid": b"GPU-aaaa",
                "memory": _Memory(total=40960 * MIB, used=1500 * MIB + 123),
                "procs": [_Proc(pid=100, usedGpuMemory=1024 * MIB), _Proc(101, None)],
                "busy_percent": 37,
            },
            {
                "name": "NVIDIA GeForce RTX 4090",
                "uuid": "GPU-bbbb",
                "memory": _Memory(total=24564 * MIB, used=0),
                "procs": [],
            },
        ]

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> Any:
        return handle["name"]

    def nvmlDeviceGetUUID(self, handle: dict[str, Any]) -> Any:
        return handle["uuid"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> Any:
        return handle["memory"]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: dict[str, Any]) -> Any:
        return handle["procs"]

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> Any:
        if "busy_percent" not in handle:  # as NVML_ERROR_NOT_SUPPORTED on some cards
            raise NVMLError("Not Supported")
        return _Rates(gpu=handle["busy_percent"], memory=0)


# --- FakeBackend ---------------------------------------------------------------------------


def test_fake_backend_counts_names_uuids_and_default_memory() -> None:
    gpus = FakeBackend(3).discover()
    assert [g.index for g in gpus] == [0, 1, 2]
    assert [g.uuid for g in gpus] == ["GPU-fake-0", "GPU-fake-1", "GPU-fake-2"]
    assert {g.name for g in gpus} == {"Fake GPU"}
    assert {g.memory_total_mib for g in gpus} == {24576}
    assert all(g.memory_used_mib == 0 and g.processes == () for g in gpus)
    assert FakeBackend(3).name == "fake"


def test_fake_backend_custom_memory_and_zero_count() -> None:
    assert [g.memory_total_mib for g in FakeBackend(2, 512).discover()] == [512, 512]
    assert FakeBackend(0).discover() == []


def test_fake_backend_missing_procs_file_means_no_processes(tmp_path: Path) -> None:
    gpus = FakeBackend(2, procs_file=tmp_path / "absent.json").discover()
    assert all(g.processes == () for g in gpus)


def test_fake_backend_rereads_procs_file_and_sums_usage(tmp_path: Path) -> None:
    procs_file = tmp_path / "procs.json"
    backend = FakeBackend(3, procs_file=procs_file)
    write_fake_procs(procs_file, {0: [GpuProcess(4242, 2000), GpuProcess(4243, 500)]})
    first = backend.discover()
    assert first[0].processes == (GpuProcess(4242, 2000), GpuProcess(4243, 500))
    assert first[0].memory_used_mib == 2500
    assert first[1].memory_used_mib == 0

    write_fake_procs(procs_file, {2: [GpuProcess(7, 100)]})
    second = backend.discover()
    assert second[0].processes == ()
    assert second[0].memory_used_mib == 0
    assert second[2] == GpuInfo(2, "GPU-fake-2", "Fake GPU", 24576, 100, (GpuProcess(7, 100),))

    procs_file.unlink()
    assert all(g.processes == () for g in backend.discover())


def test_write_fake_procs_format_and_no_leftover_tmp(tmp_path: Path) -> None:
    procs_file = tmp_path / "procs.json"
    write_fake_procs(procs_file, {1: [GpuProcess(9, 10)]})
    assert json.loads(procs_file.read_text()) == {"1": [{"pid": 9, "used_mib": 10}]}
    assert [p.name for p in tmp_path.iterdir()] == ["procs.json"]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"0": {"pid": 1, "used_mib": 2}}',
        '{"0": [{"pid": 1}]}',
        '{"0": [{"pid": "1", "used_mib": 2}]}',
        '{"0": [{"pid": 1, "used_mib": -2}]}',
        '{"0": [{"pid": true, "used_mib": 2}]}',
        '{"0": [{"pid": 1, "used_mib": 2, "x": 3}]}',
        '{"zero": []}',
        '{"5": []}',
        '{"-1": []}',
    ],
)
def test_fake_backend_malformed_procs_file(tmp_path: Path, content: str) -> None:
    procs_file = tmp_path / "procs.json"
    procs_file.write_text(content)
    with pytest.raises(InvalidInput) as info:
        FakeBackend(2, procs_file=procs_file).discover()
    assert info.value.field == "fake GPU process file"
    assert str(procs_file) in info.value.message


def test_fake_backend_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInput):
        FakeBackend(65)
    with pytest.raises(InvalidInput):
        FakeBackend(-1)
    with pytest.raises(InvalidInput):
        FakeBackend(1, 0)


# --- parse_fake_spec -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("4", (4, None)),
        ("4x24G", (4, 24576)),
        ("4X24g", (4, 24576)),
        ("2x512M", (2, 512)),
        ("2x512m", (2, 512)),
        ("0", (0, None)),
        ("64", (64, None)),
        (" 8 ", (8, None)),
    ],
)
def test_parse_fake_spec(spec: str, expected: tuple[int, int | None]) -> None:
    assert parse_fake_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "x",
        "65",
        "-1",
        "4x",
        "4x24",
        "4x24T",
        "4x0G",
        "x24G",
        "4x24Gx",
        "four",
        "4.5",
        "٤",
        "4 x 24G",
    ],
)
def test_parse_fake_spec_errors(spec: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_fake_spec(spec)
    assert info.value.field == "fake GPUs"
    assert "a count like 4 or count x memory like 4x24G" in info.value.message


# --- NvmlBackend ---------------------------------------------------------------------------


def test_nvml_backend_discover() -> None:
    nvml = FakeNvml()
    backend = NvmlBackend(nvml)
    assert backend.name == "nvml"
    assert nvml.calls == ["init"]
    gpus = backend.discover()
    assert gpus == [
        GpuInfo(
            index=0,
            uuid="GPU-aaaa",
            name="NVIDIA A100-SXM4-40GB",
            memory_total_mib=40960,
            memory_used_mib=1500,
            processes=(GpuProcess(100, 1024), GpuProcess(101, 0)),
            utilization=0.37,
        ),
        GpuInfo(
            index=1,
            uuid="GPU-bbbb",
            name="NVIDIA GeForce RTX 4090",
            memory_total_mib=24564,
            memory_used_mib=0,
            processes=(),
        ),
    ]
    assert backend.discover() == gpus
    assert nvml.calls == ["init"]
    backend.close()
    backend.close()
    assert nvml.calls == ["init", "shutdown"]


def test_nvml_discover_is_a_fresh_snapshot() -> None:
    nvml = FakeNvml()
    backend = NvmlBackend(nvml)
    nvml.devices[1]["procs"] = [_Proc(5, 300 * MIB)]
    assert backend.discover()[1].processes == (GpuProcess(5, 300),)
    backend.close()


def test_nvml_available_true_shuts_down_again() -> None:
    nvml = FakeNvml()
    assert NvmlBackend.available(nvml) is True
    assert nvml.calls == ["init", "shutdown"]


@pytest.mark.parametrize(
    "error", [NVMLError("no driver"), NVMLError_LibraryNotFound("gone"), OSError("x")]
)
def test_nvml_available_false_on_init_failure(error: Exception) -> None:
    assert NvmlBackend.available(FakeNvml(init_error=error)) is False


def test_nvml_available_does_not_hide_bugs() -> None:
    with pytest.raises(ZeroDivisionError):
        NvmlBackend.available(FakeNvml(init_error=ZeroDivisionError()))


def test_nvml_available_real_module_without_driver() -> None:
    assert isinstance(NvmlBackend.available(), bool)


# --- select_backend ------------------------------------------------------------------------


def test_select_backend_fake_spec_wins(tmp_path: Path) -> None:
    nvml = FakeNvml()
    backend = select_backend("2x1G", tmp_path / "procs.json", nvml=nvml)
    assert isinstance(backend, FakeBackend)
    assert [g.memory_total_mib for g in backend.discover()] == [1024, 1024]
    assert nvml.calls == []


def test_select_backend_fake_zero_gives_none() -> None:
    assert select_backend("0", None, nvml=FakeNvml()) is None


def test_select_backend_bad_fake_spec_raises() -> None:
    with pytest.raises(InvalidInput):
        select_backend("lots", None, nvml=FakeNvml())


def test_select_backend_no_fake_and_failing_nvml_gives_none() -> None:
    assert select_backend(None, None, nvml=FakeNvml(init_error=NVMLError("no driver"))) is None


def test_select_backend_no_fake_and_working_nvml() -> None:
    nvml = FakeNvml()
    backend = select_backend(None, None, nvml=nvml)
    assert isinstance(backend, NvmlBackend)
    assert len(backend.discover()) == 2
    backend.close()
    assert nvml.calls == ["init", "shutdown", "init", "shutdown"]


# --- without the nvml extra ------------------------------------------------------------------


@pytest.fixture
def no_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if nvidia-ml-py were not installed: importing pynvml fails."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


@pytest.mark.usefixtures("no_pynvml")
def test_without_nvml_bindings_a_machine_without_nvidia_cards_is_cpu_only(tmp_path: Path) -> None:
    assert select_backend(None, None, gpus_dir=tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert select_backend(None, None, gpus_dir=tmp_path / "empty") is None
    assert NvmlBackend.available() is False


@pytest.mark.usefixtures("no_pynvml")
def test_without_nvml_bindings_nvidia_cards_or_configured_gpus_name_the_extra(
    tmp_path: Path,
) -> None:
    (tmp_path / "0000:01:00.0").mkdir(parents=True)
    with pytest.raises(MissingExtra, match=r"NVIDIA cards needs the 'nvml' extra"):
        select_backend(None, None, gpus_dir=tmp_path)
    with pytest.raises(MissingExtra, match=r"pip install 'gflow-scheduler\[nvml\]'$"):
        select_backend(None, None, gpus_configured=True, gpus_dir=tmp_path / "absent")
    assert isinstance(select_backend("2", None, gpus_dir=tmp_path), FakeBackend)
