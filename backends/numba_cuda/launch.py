"""Launching kernels: the launch configuration, the compiled-kernel cache, and the
grid shapes.

On a GPU, element-parallel kernels use 256 threads per block and matmul 16x16
tiles. Under the simulator every CUDA thread is a Python thread and every barrier
a thread hand-off, so the same kernels launch as one thread (one 1x1 tile, whose
barriers are skipped) and the tests stay fast; tests/test_cuda_backend.py sets
these module attributes to rerun the kernels with multi-thread blocks, several
blocks and 2x2 shared-memory tiles.

Under the simulator every launch (kernel key, argument types) is recorded in
LAUNCHED, so that `python -m opgraph.backends.numba_cuda --check-compile FILE` can
type-check and lower exactly those kernels for the real CUDA target.
"""
import contextlib
import math
import sys

from .device import SIM, cuda, numba
from .kernels import kernel_function

if SIM:
    THREADS, MAX_BLOCKS = 1, 1        # element-parallel kernels
    REDUCE_THREADS = 4                # block reductions (power of two)
    BLOCK_REDUCE_MIN = 1 << 62        # simulator: serial reductions unless a test asks
    TILE = 1                          # matmul tiles (TILE x TILE threads)
    MAX_TILE_BLOCKS = 1
else:
    THREADS, MAX_BLOCKS = 256, 65535
    REDUCE_THREADS = 256
    BLOCK_REDUCE_MIN = 256            # a reduction this long gets a block per output
    TILE = 16
    MAX_TILE_BLOCKS = 65535
BLOCK_REDUCE_MAX_OUT = 1 << 14        # ... unless there are many outputs anyway

LAUNCHED = set()  # (kernel key, argument numba types): see --check-compile
_kernels = {}


def _kernel(key):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = cuda.jit(kernel_function(key))
    return k


@contextlib.contextmanager
def _simulator_switching():
    # Simulated threads meet at barriers through the GIL; the default 5 ms switch
    # interval makes every cuda.syncthreads() cost milliseconds. (Single-thread
    # launches are faster with the default interval, so they keep it.)
    old = sys.getswitchinterval()
    sys.setswitchinterval(2e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def launch(key, grid, block, *args):
    """Run kernel `key` on a (grid, block) launch."""
    k = _kernel(key)[grid, block]
    if not SIM:  # on a GPU every launch compiles for real: nothing to record
        k(*args)
        return
    LAUNCHED.add((key, tuple(numba.typeof(a) for a in args)))
    threads = block if isinstance(block, int) else math.prod(block)
    if threads > 1:
        with _simulator_switching():
            k(*args)
    else:
        k(*args)


def grid1(n):
    """(blocks, threads) of a grid-stride loop over n elements."""
    return min(MAX_BLOCKS, max(1, -(-n // THREADS))), THREADS


def use_block_reduce(n_out, n_red):
    """Whether a reduction gets a shared-memory block per output (long, few outputs)."""
    return n_red >= BLOCK_REDUCE_MIN and n_out < BLOCK_REDUCE_MAX_OUT


def block_per_output(n_out):
    """(blocks, threads) of a block reduction over n_out outputs."""
    return min(n_out, MAX_BLOCKS), REDUCE_THREADS


def tiles(n, m, nb):
    """(grid, block) of a tiled product with an (n, m) output per batch entry, nb entries."""
    tiles_n, tiles_m = -(-n // TILE), -(-m // TILE)
    return ((min(tiles_m, MAX_TILE_BLOCKS), min(tiles_n, MAX_TILE_BLOCKS),
             min(nb, MAX_TILE_BLOCKS)), (TILE, TILE))
