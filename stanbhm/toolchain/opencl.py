"""What OpenCL this machine offers, read through libOpenCL with ctypes.

Stan's OpenCL kernels need the C++ bindings header at compile time and an ICD
loader plus at least one platform at run time. Platforms are listed with their
devices and device types, because platform 0 is not necessarily the GPU (PoCL's
CPU device often comes first): callers choose a device by type.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolchainError

HEADER_DIRS = (Path("/usr/include"), Path("/usr/local/include"))
CL_PLATFORM_NAME = 0x0902
CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
CL_DEVICE_TYPE = 0x1000
CL_DEVICE_NAME = 0x102B
DEVICE_TYPES = {1: "default", 2: "cpu", 4: "gpu", 8: "accelerator", 16: "custom"}


@dataclass(frozen=True)
class Device:
    platform_id: int
    device_id: int
    platform: str
    name: str
    kind: str  # "cpu", "gpu", "accelerator", ...


def header_path() -> Path | None:
    for d in HEADER_DIRS:
        p = d / "CL" / "opencl.hpp"
        if p.exists():
            return p
    return None


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("OpenCL")
    for candidate in (name, "libOpenCL.so.1", "libOpenCL.so"):
        if not candidate:
            continue
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


def _info_string(fn, handle, param: int) -> str:
    size = ctypes.c_size_t()
    fn(handle, param, 0, None, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    fn(handle, param, size, buf, None)
    return buf.value.decode(errors="replace").strip()


def devices() -> list[Device]:
    """Every OpenCL device, numbered as Stan numbers them (platform, device)."""
    lib = _library()
    if lib is None:
        return []
    n = ctypes.c_uint()
    if lib.clGetPlatformIDs(0, None, ctypes.byref(n)) != 0 or n.value == 0:
        return []
    plats = (ctypes.c_void_p * n.value)()
    lib.clGetPlatformIDs(n.value, plats, None)
    found: list[Device] = []
    for p_idx, plat in enumerate(plats):
        pname = _info_string(lib.clGetPlatformInfo, ctypes.c_void_p(plat), CL_PLATFORM_NAME)
        nd = ctypes.c_uint()
        if lib.clGetDeviceIDs(ctypes.c_void_p(plat), ctypes.c_uint64(CL_DEVICE_TYPE_ALL), 0,
                              None, ctypes.byref(nd)) != 0:
            continue
        devs = (ctypes.c_void_p * nd.value)()
        lib.clGetDeviceIDs(ctypes.c_void_p(plat), ctypes.c_uint64(CL_DEVICE_TYPE_ALL),
                           nd.value, devs, None)
        for d_idx, dev in enumerate(devs):
            dname = _info_string(lib.clGetDeviceInfo, ctypes.c_void_p(dev), CL_DEVICE_NAME)
            dtype = ctypes.c_uint64()
            lib.clGetDeviceInfo(ctypes.c_void_p(dev), CL_DEVICE_TYPE, ctypes.sizeof(dtype),
                                ctypes.byref(dtype), None)
            kind = next((v for k, v in DEVICE_TYPES.items() if dtype.value & k and k != 1),
                        "default")
            found.append(Device(p_idx, d_idx, pname, dname, kind))
    return found


def opencl_missing() -> str | None:
    """None when OpenCL builds can work here; else a sentence naming what is missing."""
    if header_path() is None:
        return ("the C++ header CL/opencl.hpp is missing "
                "(Debian: apt-get install opencl-clhpp-headers)")
    if _library() is None:
        return ("the OpenCL loader libOpenCL.so is missing "
                "(Debian: apt-get install ocl-icd-opencl-dev)")
    if not devices():
        return ("no OpenCL platform is installed "
                "(Debian: apt-get install pocl-opencl-icd for a CPU device, or a GPU driver)")
    return None


def choose_device(kind: str = "gpu") -> Device:
    """The first device of the given type; raises if there is none."""
    for dev in devices():
        if dev.kind == kind:
            return dev
    have = ", ".join(f"{d.kind} '{d.name}' (platform {d.platform_id})" for d in devices())
    raise LookupError(f"no OpenCL {kind} device; found: {have or 'none'}")


def resolve(request: object) -> Device | None:
    """The device a model's ``opencl=`` request names, on this machine.

    ``False``: none. ``"gpu"`` or ``"cpu"``: the first device of that type. ``True``: the
    first GPU, else the first device of any type. ``(platform, device)``: that device, as
    Stan numbers them. Raises ToolchainError, naming what is missing, when OpenCL or the
    device is not here.
    """
    if request is False:
        return None
    missing = opencl_missing()
    if missing:
        raise ToolchainError(f"opencl={request!r} was requested but {missing}")
    found = devices()
    if isinstance(request, tuple):
        for dev in found:
            if (dev.platform_id, dev.device_id) == request:
                return dev
        have = ", ".join(f"({d.platform_id}, {d.device_id}) {d.kind} '{d.name}'" for d in found)
        raise ToolchainError(f"opencl={request!r}: no such OpenCL device; found: {have}")
    if request is True:
        gpus = [d for d in found if d.kind == "gpu"]
        return (gpus or found)[0]
    try:
        return choose_device(str(request))
    except LookupError as exc:
        raise ToolchainError(f"opencl={request!r}: {exc}") from None


def build_options() -> tuple[dict[str, object], dict[str, object]]:
    """(cpp_options, stanc_options) of a program whose kernels run on an OpenCL device:
    stanc moves the GLM kernels and the distributions it can to OpenCL
    (``--use-opencl``). One build serves every device: the launcher takes the device at
    run time (`selected`)."""
    return {"STAN_OPENCL": True}, {"use-opencl": True}


#: The launcher's variable for the device (CmdStanPy passes no OpenCL arguments).
DEVICE_VARIABLE = "STANBHM_OPENCL_DEVICE"


@contextmanager
def selected(device: Device | None) -> Iterator[None]:
    """Runs of an OpenCL program inside this block use `device` (nothing changes for
    None): the launcher reads `DEVICE_VARIABLE`, and CmdStanPy hands its processes this
    process's environment, as it does for ``STAN_NUM_THREADS``."""
    if device is None:
        yield
        return
    before = os.environ.get(DEVICE_VARIABLE)
    os.environ[DEVICE_VARIABLE] = f"{device.platform_id},{device.device_id}"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEVICE_VARIABLE, None)
        else:
            os.environ[DEVICE_VARIABLE] = before
