"""The Numba-CUDA backend: tensor data lives on the GPU as Numba device arrays.

Every kernel of `Backend` is a `numba.cuda.jit` kernel. Data goes to the device
in `asarray` and comes back only in `to_numpy`; no kernel copies tensor data
through the host. What the host does compute is index and shape metadata:
broadcast strides, views (offset + strides) of basic indexing keys, and the
flat source positions of advanced (integer array) keys in `getitem` and
`index_put_add` -- those keys are copied to the host when they live on the
device, because NumPy's indexing rules are applied to them there.

The package:

- device.py            the host-side numba.cuda calls, and all that differs between a
                       GPU and Numba's CUDA simulator (one small adapter, `Device`)
- device_functions.py  index arithmetic, elementwise math and semirings on the device
- kernels.py           the kernels, built by key; matmul and tropical matmul are one
                       tiled template
- launch.py            launch configuration, compiled-kernel cache, grid shapes
- layout.py            host-side shape and stride arithmetic
- backend.py           NumbaCUDABackend
- __main__.py          `python -m opgraph.backends.numba_cuda --check-compile FILE`:
                       lower recorded kernels for the real CUDA target, without a GPU

Layout. Every array this backend returns is C-contiguous, so a kernel sees it as
a flat 1-D buffer plus a shape. Layout changes (transpose, broadcast_to,
diagonal, basic slicing, cat, split) are all one strided-copy kernel with
different (offset, shape, strides) triples computed on the host; adjacent
dimensions that stay contiguous are merged first, so the kernels' index
arithmetic runs on as few dimensions as possible. Shapes and strides are passed
to kernels as tuples, so each kernel is compiled once per rank.
"""
from .device import DEVICE, SIM, Device
from .backend import NumbaCUDABackend
from .launch import LAUNCHED

__all__ = ["NumbaCUDABackend", "Device", "DEVICE", "SIM", "LAUNCHED"]
