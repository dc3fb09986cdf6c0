"""The host side of numba.cuda, in one place: every call on data the backend makes
into numba.cuda, and what differs between a GPU and Numba's CUDA simulator
(`NUMBA_ENABLE_CUDASIM=1`) in them. (The other difference, launch sizes and the
record of launched kernels, is in launch.py.)

Both run the same host path: `cuda.to_device`, `cuda.device_array` and
`copy_to_host` exist under the simulator too. The differences are few:

- the simulator's device array reports its shape as an object that rejects
  negative indices, so its arrays are wrapped in `SimDeviceArray` (a tuple shape,
  as a GPU's DeviceNDArray has);
- the simulator's shared memory needs a lock (`_patch_simulator_shared_arrays`);
- device functions are compiled for a GPU and stay plain Python under the
  simulator (`device_function`);
- only a GPU takes other libraries' device arrays (`__cuda_array_interface__`).

`Device(cuda, simulator)` holds the host calls the backend makes; tests build
one with simulator=False around a test double of `numba.cuda` to run the GPU
branch without a GPU.
"""
import sys

import numpy as np

try:
    import numba
    from numba import cuda
    IMPORT_ERROR = None
except Exception as e:  # numba-cuda missing, or no CUDA bindings
    numba = cuda = None
    IMPORT_ERROR = e


def _simulator_enabled():
    if cuda is None:
        return False
    try:
        from numba.cuda.core import config
    except ImportError:  # older numba-cuda
        from numba import config
    return bool(getattr(config, "ENABLE_CUDASIM", False))


SIM = _simulator_enabled()


def device_function(f):
    """A device function: compiled for the GPU; plain Python under the simulator
    (a simulated device call costs a lock and a module swap per call)."""
    if cuda is None or SIM:
        return f
    return cuda.jit(device=True)(f)


class Device:
    """The few host-side numba.cuda calls of the backend: allocation, upload,
    adopting foreign device arrays, and whether a device is there at all."""

    def __init__(self, cuda_module, simulator):
        self.cuda = cuda_module
        self.simulator = simulator

    def _wrap(self, array):
        return SimDeviceArray(array._ary) if self.simulator else array

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous device array."""
        return self._wrap(self.cuda.device_array(shape, dtype=dtype))

    def to_device(self, host):
        """A device copy of a C-contiguous NumPy array."""
        return self._wrap(self.cuda.to_device(host))

    def contiguous(self, array):
        """A C-contiguous device copy of a strided device array (copied on the device)."""
        out = self.empty(tuple(array.shape), array.dtype)
        out[...] = array
        return out

    def storage(self, array):
        """The object owning a device array's memory (shared by its reshapes): the
        allocation on a GPU, the wrapped NumPy array's base under the simulator."""
        if self.simulator:
            a = array._ary
            while isinstance(a.base, np.ndarray):
                a = a.base
            return a
        return array.gpu_data

    def foreign(self, data):
        """Another library's GPU array (CuPy, PyTorch CUDA tensors) as a zero-copy
        device array; None when `data` is not one (the simulator has no such arrays)."""
        if self.simulator or not hasattr(data, "__cuda_array_interface__"):
            return None
        return self.cuda.as_cuda_array(data)

    def unavailable_reason(self):
        """None when kernels can run; otherwise why not and what to do."""
        if self.cuda is None:
            return (f"numba-cuda is not installed ({type(IMPORT_ERROR).__name__}: "
                    f"{IMPORT_ERROR}); install it with pip install -e '.[cuda]'")
        if self.simulator:
            return None
        try:
            if self.cuda.is_available():
                return None
        except Exception:  # the driver can raise instead of returning False
            pass
        return ("no CUDA GPU is available (numba.cuda.is_available() is False) and Numba's CUDA "
                "simulator is off; to run the cuda backend on the CPU, set "
                "NUMBA_ENABLE_CUDASIM=1 in the environment before numba.cuda (or opgraph) is "
                "first imported")


def is_device_array(x):
    return bool(getattr(x, "__cuda_ndarray__", False))


if SIM:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    class SimDeviceArray(FakeCUDAArray):
        """The simulator's device array, with a plain tuple `.shape` as a GPU
        DeviceNDArray has (the simulator's own shape rejects negative indices,
        which host code such as `x.shape[-1]` may use)."""

        @property
        def shape(self):
            return tuple(self._ary.shape)

        def reshape(self, *args, **kwargs):
            return SimDeviceArray(self._ary.reshape(*args, **kwargs))

    def _patch_simulator_shared_arrays():
        """The simulator gives the threads of a block one shared array per source line
        through an unlocked get-or-create: two threads that both miss create two arrays,
        and the block silently stops sharing memory (wrong matmul results, more often
        the more often threads switch). Same logic, under a lock."""
        import threading
        from numba.core import types as nbtypes
        from numba.np import numpy_support
        from numba.cuda.simulator import kernelapi
        original = kernelapi.FakeCUDAShared.array
        lock = threading.Lock()

        def array(self, shape, dtype, alignment=None):
            if alignment is not None or shape == 0:  # dynamic shared memory: no allocation
                return original(self, shape, dtype, alignment)
            if isinstance(dtype, nbtypes.Type):
                dtype = numpy_support.as_dtype(dtype)
            frame = sys._getframe(1)
            caller = (frame.f_code.co_filename, frame.f_lineno)
            with lock:
                res = self._allocations.get(caller)
                if res is None:
                    res = self._allocations[caller] = np.empty(shape, dtype)
            return res

        kernelapi.FakeCUDAShared.array = array

    _patch_simulator_shared_arrays()
else:
    SimDeviceArray = None

DEVICE = Device(cuda, SIM)
