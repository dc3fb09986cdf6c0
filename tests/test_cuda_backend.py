"""Things specific to the Numba-CUDA backend (the kernels themselves are checked on
every backend by test_backend_conformance.py and the op tests).

Without a GPU these run on Numba's CUDA simulator (tests/conftest.py sets
NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported); with a GPU, on the GPU.
The simulator runs the kernels with one-thread launches for speed, so the tests
here also rerun the kernels with real multi-thread blocks, shared-memory tiles
and block reductions, and lower every kernel the session launched with the
real CUDA compiler (the simulator executes plain Python and would accept code
the CUDA target rejects).
"""
import importlib.util
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip("numba-cuda is not installed (pip install -e '.[cuda]'): cuda backend not tested",
                allow_module_level=True)

from opgraph import backends  # noqa: E402
import opgraph as og  # noqa: E402
from opgraph.backends import numba_cuda as nc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = backends.get("numpy")


@pytest.fixture
def cu():
    return backends.get("cuda")


def host(cu, a):
    return np.asarray(cu.to_numpy(a))


def is_device_array(x):
    return bool(getattr(type(x), "__cuda_ndarray__", False))


# ----------------------------------------------------------------- data on device
def test_registry_and_class(cu):
    assert isinstance(cu, backends.NumbaCUDABackend)
    assert cu.name == "cuda"
    assert backends.get("cuda") is cu
    assert "cuda" in backends.available()


def test_tensor_data_stays_on_device_through_training_step(cu, monkeypatch):
    """Forward, backward and an optimizer step never copy float tensor data to the host.
    (Index checks read back 0-d integers: a kernel's out-of-range flag, or the min and max
    of cross_entropy's targets.)"""
    rng = np.random.default_rng(0)
    x = og.tensor(rng.standard_normal((4, 3)), backend="cuda")
    w = og.tensor(rng.standard_normal((3, 5)), requires_grad=True, backend="cuda")
    b = og.tensor(np.zeros(5), requires_grad=True, backend="cuda")
    targets = og.tensor([0, 4, 2, 1], backend="cuda")
    device_type = type(x.data)
    downloads = []
    original = device_type.copy_to_host

    def counting(self, *args, **kwargs):
        downloads.append((tuple(self.shape), self.dtype.kind))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(device_type, "copy_to_host", counting)
    h = (x @ w + b).relu()
    loss = og.cross_entropy(h.softmax(-1).log_softmax(-1) * 2.0, targets) + (h ** 2).mean()
    loss.backward()
    for p in (w, b):
        p.data = (p - 0.1 * p.grad).data
    floats = [d for d in downloads if d[1] == "f"]
    assert floats == [], f"tensor data went to the host: (shape, kind) {downloads}"
    assert all(d == ((), "i") for d in downloads), downloads  # index range checks only
    for t in (h, loss, w.grad, b.grad, w, b):
        assert is_device_array(t.data), type(t.data)
        assert cu.is_array(t.data)
    del downloads[:]
    assert isinstance(loss.numpy(), np.ndarray)  # .numpy() is the way back
    assert downloads == [((), "f")]


def test_numpy_item_repr_and_negative_shape_index(cu):
    t = og.tensor([[1.0, 2.0], [3.0, 4.0]], backend="cuda")
    assert type(t.numpy()) is np.ndarray
    np.testing.assert_array_equal(t.numpy(), [[1, 2], [3, 4]])
    assert t.sum().item() == 10.0
    assert "backend=cuda" in repr(t)
    assert t.data.shape[-1] == 2  # host code may index shapes from the end, as on a GPU
    assert t.dtype == np.float32 and t.shape == (2, 2)


def test_to_and_from_other_backends_is_differentiable(cu):
    a = og.tensor([1.0, -2.0, 3.0], requires_grad=True)
    c = a.to("cuda")
    assert c.backend is cu and is_device_array(c.data)
    (c * c).sum().backward()
    assert a.grad.backend.name == "numpy"
    np.testing.assert_allclose(a.grad.numpy(), [2.0, -4.0, 6.0])


def test_dtypes_kept(cu):
    for dtype in (np.float32, np.float64):
        a = cu.asarray(np.ones((2, 3), dtype))
        assert cu.binary("mul", a, 2.5).dtype == dtype
        assert cu.matmul(a, cu.transpose(a, (1, 0))).dtype == dtype
        assert cu.softmax(a, -1).dtype == dtype
        assert cu.sum(a).dtype == dtype
    assert cu.binary("gt", a, 0.0).dtype == np.bool_
    assert cu.argmax(a, 0).dtype == np.int64
    assert cu.tropical_matmul(a, cu.transpose(a, (1, 0)), "max_plus")[1].dtype == np.int64


def test_zero_size_and_zero_dim(cu):
    e = cu.asarray(np.zeros((0, 3), np.float32))
    assert host(cu, cu.sum(e, (0,))).tolist() == [0, 0, 0]
    assert host(cu, cu.binary("add", e, 1.0)).shape == (0, 3)
    assert host(cu, cu.matmul(cu.asarray(np.ones((2, 0))), cu.asarray(np.ones((0, 3))))).tolist() \
        == [[0.0] * 3] * 2
    assert host(cu, cu.reshape(e, (3, 0))).shape == (3, 0)
    s = cu.asarray(np.float64(3.0))
    assert host(cu, cu.binary("mul", s, s)).shape == ()
    assert host(cu, cu.unary("exp", s)) == pytest.approx(np.exp(3.0))
    assert host(cu, cu.softmax(s, 0)) == 1.0
    with pytest.raises(ValueError, match="empty axis"):
        cu.max(e, 0)


def test_ieee_results_not_exceptions(cu):
    # the simulator runs Python's math, which raises where a GPU returns inf / nan
    x = cu.asarray(np.array([0.0, -1.0, 1000.0, np.inf], np.float64))
    with np.errstate(all="ignore"):
        for op in ("log", "sqrt", "rsqrt", "exp", "sin", "cos"):
            np.testing.assert_array_equal(host(cu, cu.unary(op, x)),
                                          REF.unary(op, np.array([0.0, -1.0, 1000.0, np.inf])))


# ----------------------------------------------- multi-thread launches and tiles
@pytest.fixture
def big_launches(monkeypatch):
    """Real multi-thread blocks, several blocks, shared-memory tiles and block
    reductions (the simulator's default launches are one thread)."""
    monkeypatch.setattr(nc.launch, "THREADS", 3)
    monkeypatch.setattr(nc.launch, "MAX_BLOCKS", 2)
    monkeypatch.setattr(nc.launch, "TILE", 2)
    monkeypatch.setattr(nc.launch, "MAX_TILE_BLOCKS", 2)
    monkeypatch.setattr(nc.launch, "REDUCE_THREADS", 4)
    monkeypatch.setattr(nc.launch, "BLOCK_REDUCE_MIN", 1)


def test_tiled_matmul_batched_broadcast(cu, big_launches):
    rng = np.random.default_rng(1)
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a = rng.standard_normal((3, 1, 5, 3)).astype(dtype)  # 5 rows: 3 tiles of 2, 2 blocks
        b = rng.standard_normal((2, 3, 7)).astype(dtype)
        got = cu.matmul(cu.asarray(a), cu.asarray(b))
        assert got.dtype == dtype and got.shape == (3, 2, 5, 7)
        np.testing.assert_allclose(host(cu, got), a @ b, rtol=tol, atol=tol)


@pytest.mark.parametrize("semiring", ["max_plus", "min_plus", "max_mul"])
def test_tiled_tropical_matmul_ties_lowest_index(cu, big_launches, semiring):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2, (2, 3, 5)).astype(np.float64)  # 0/1 entries: ties everywhere
    b = rng.integers(0, 2, (5, 3)).astype(np.float64)
    got, arg = cu.tropical_matmul(cu.asarray(a), cu.asarray(b), semiring)
    want, want_arg = REF.tropical_matmul(a, b, semiring)
    np.testing.assert_array_equal(host(cu, got), want)
    np.testing.assert_array_equal(host(cu, arg), want_arg)
    # brute force: the winner is the first l reaching the optimum
    combine = np.multiply if semiring == "max_mul" else np.add
    cand = combine(a[..., :, :, None], b[None, :, :])  # (2, 3, 5, 3)
    best = cand.min(-2) if semiring == "min_plus" else cand.max(-2)
    np.testing.assert_array_equal(host(cu, arg), np.argmax(cand == best[..., None, :], axis=-2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_reductions_and_rows(cu, big_launches, dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (3, 4, 11)).astype(dtype)  # ties for argmax
    a = cu.asarray(x)
    for axes in (None, (2,), (0, 2), (1,)):
        np.testing.assert_allclose(host(cu, cu.sum(a, axes)), x.sum(axis=axes), rtol=1e-6)
    for axis in (None, 0, 2):
        np.testing.assert_array_equal(host(cu, cu.max(a, axis)), x.max(axis=axis))
        np.testing.assert_array_equal(host(cu, cu.min(a, axis, True)), x.min(axis=axis, keepdims=True))
        if axis is not None:
            np.testing.assert_array_equal(host(cu, cu.argmax(a, axis)), x.argmax(axis=axis))
    y = rng.standard_normal((2, 9, 3)).astype(dtype)
    for axis in (1, -1):
        np.testing.assert_allclose(host(cu, cu.softmax(cu.asarray(y), axis)), REF.softmax(y, axis),
                                   rtol=1e-5)
        np.testing.assert_allclose(host(cu, cu.log_softmax(cu.asarray(y), axis)),
                                   REF.log_softmax(y, axis), rtol=1e-5, atol=1e-6)


def test_nan_propagates_in_block_max(cu, big_launches):
    x = np.array([[1.0, np.nan, 5.0, np.nan, 2.0, 7.0]])
    a = cu.asarray(x)
    assert np.isnan(host(cu, cu.max(a, 1))[0])
    assert host(cu, cu.argmax(a, 1))[0] == 1  # the first NaN, as NumPy


def test_grid_stride_elementwise_and_atomics(cu, big_launches):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 5))
    a = cu.asarray(x)
    np.testing.assert_allclose(host(cu, cu.binary("mul", a, cu.asarray(x[:1]))), x * x[:1])
    idx = rng.integers(0, 3, (6,))  # repeated rows: concurrent atomic adds
    src = rng.standard_normal((6, 5))
    np.testing.assert_allclose(host(cu, cu.scatter_rows_add(3, cu.asarray(idx), cu.asarray(src))),
                               REF.scatter_rows_add(3, idx, src))
    key = (np.array([0, 2, 0, 0]),)
    np.testing.assert_allclose(host(cu, cu.index_put_add((7, 5), key, cu.asarray(src[:4]))),
                               REF.index_put_add((7, 5), key, src[:4]))


# ------------------------------------------ the GPU branch of the host adapter
class RecordingCuda:
    """A test double of the numba.cuda host calls that Device makes on a GPU. Its
    device arrays are the simulator's, which kernels can run on, with a tuple shape
    as a GPU's DeviceNDArray has."""

    def __init__(self):
        self.calls = []

    def _device(self, host):
        return nc.DEVICE.to_device(np.array(host, order="C"))  # (ascontiguousarray makes 0-d 1-d)

    def to_device(self, host):
        self.calls.append(("to_device", host.shape, host.dtype, host.flags.c_contiguous))
        return self._device(host)

    def device_array(self, shape, dtype):
        self.calls.append(("device_array", tuple(shape), np.dtype(dtype)))
        return self._device(np.empty(shape, dtype))

    def as_cuda_array(self, obj):
        self.calls.append(("as_cuda_array", type(obj).__name__))
        return self._device(obj.host)

    def is_available(self):
        self.calls.append(("is_available",))
        return True


class ForeignGPUArray:
    """Stands in for a CuPy array or a PyTorch CUDA tensor."""
    __cuda_array_interface__ = {}  # presence is all Device.foreign looks at

    def __init__(self, host):
        self.host = host


def test_gpu_branch_of_the_device_adapter_calls_numba_cuda_once_per_upload():
    fake = RecordingCuda()
    dev = nc.Device(fake, simulator=False)
    assert dev.unavailable_reason() is None and fake.calls == [("is_available",)]
    host_data = np.arange(6.0).reshape(2, 3)
    up = dev.to_device(host_data)
    assert fake.calls[-1] == ("to_device", (2, 3), np.float64, True)  # one call, no recursion
    np.testing.assert_array_equal(up.copy_to_host(), host_data)
    assert dev.empty((4,), np.int64).shape == (4,) and fake.calls[-1][0] == "device_array"
    view = dev.foreign(ForeignGPUArray(host_data))
    assert fake.calls[-1] == ("as_cuda_array", "ForeignGPUArray")
    np.testing.assert_array_equal(view.copy_to_host(), host_data)
    assert dev.foreign(host_data) is None  # a NumPy array is uploaded, not adopted
    strided = up[:, ::2]  # a user's strided device view: copied on the device
    assert not strided.is_c_contiguous()
    dense = dev.contiguous(strided)
    assert dense.is_c_contiguous() and fake.calls[-1] == ("device_array", (2, 2), np.float64)
    np.testing.assert_array_equal(dense.copy_to_host(), host_data[:, ::2])
    assert nc.Device(fake, simulator=True).foreign(ForeignGPUArray(host_data)) is None


def test_backend_runs_a_training_step_through_the_gpu_branch():
    """The whole backend on the GPU branch of the adapter (kernels on the simulator):
    every upload is one cuda.to_device of a C-contiguous array."""
    fake = RecordingCuda()
    gpu = nc.NumbaCUDABackend(device=nc.Device(fake, simulator=False))
    assert repr(gpu) == "<backend cuda>"
    rng = np.random.default_rng(5)
    xs, ws = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    results = {}
    for b in (gpu, REF):
        x = og.tensor(xs[:, ::-1], backend=b)  # a non-contiguous host array
        w = og.tensor(ws, requires_grad=True, backend=b)
        table = og.tensor(ws.T, requires_grad=True, backend=b)
        h = (x @ w).relu()[np.array([0, 2, 2])] + og.embedding(table, np.array([1, 1, 4]))[:, :3].sum()
        loss = og.cross_entropy(h, np.array([0, 4, 1]))
        loss.backward()
        results[b.name] = (loss.numpy(), w.grad.numpy(), table.grad.numpy())
    for got, want in zip(results["cuda"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    uploads = [c for c in fake.calls if c[0] == "to_device"]
    assert uploads and all(c[3] for c in uploads), uploads
    foreign = gpu.asarray(ForeignGPUArray(xs))
    assert fake.calls[-1] == ("as_cuda_array", "ForeignGPUArray") and gpu.is_array(foreign)


# ---------------------------------------------------------------------- errors
def test_mixing_backends_is_a_clear_error(cu):
    a = og.tensor([1.0, 2.0], backend="cuda")
    b = og.tensor([1.0, 2.0], backend="numpy")
    with pytest.raises(ValueError, match=r"different backends \(cuda and numpy\)"):
        a + b
    with pytest.raises(ValueError, match="different backends"):
        og.matmul(b.reshape(1, 2), a.reshape(2, 1))


def test_unavailable_message_without_a_gpu():
    class NoGPU:
        @staticmethod
        def is_available():
            return False
    with pytest.raises(RuntimeError) as err:
        nc.NumbaCUDABackend(device=nc.Device(NoGPU, simulator=False))
    assert "no CUDA GPU" in str(err.value) and "NUMBA_ENABLE_CUDASIM=1" in str(err.value)


@pytest.mark.skipif(os.path.exists("/dev/nvidia0"), reason="a GPU is present: cuda is available")
def test_unavailable_without_gpu_or_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    code = "from opgraph import backends\ntry:\n    backends.get('cuda')\nexcept RuntimeError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "backend 'cuda' is unavailable" in out.stdout
    assert "NUMBA_ENABLE_CUDASIM=1" in out.stdout


# ---------------------------------------------------- kernels lower for a real GPU
@pytest.mark.skipif(not nc.SIM, reason="on a GPU every launched kernel was compiled for real")
def test_every_launched_kernel_lowers_for_the_cuda_target(cu, tmp_path):
    """Type-check and lower (no GPU needed) one signature per kernel and dtype
    combination among all kernels this test session has launched so far, plus a
    sweep over every kernel family, with the real CUDA target."""
    _exercise_every_kernel(cu)
    chosen = {}
    for key, argtypes in nc.launch.LAUNCHED:  # one signature per (kernel, dtypes), any rank
        dtypes = tuple(str(getattr(t, "dtype", t)) for t in argtypes
                       if not str(t).startswith("UniTuple"))
        chosen.setdefault((key, dtypes), (key, argtypes))
    kinds = {key[0] for key, _ in chosen.values()}
    assert kinds == set(nc.kernels.BUILDERS), set(nc.kernels.BUILDERS) - kinds
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    jobs = []
    signatures = sorted(chosen.values(), key=repr)
    for part in range(2):  # two processes: lowering ~150 signatures takes a while
        path = tmp_path / f"launched{part}.pkl"
        path.write_bytes(pickle.dumps(set(signatures[part::2])))
        jobs.append(subprocess.Popen(
            [sys.executable, "-m", "opgraph.backends.numba_cuda", "--check-compile", str(path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for job in jobs:
        out, _ = job.communicate(timeout=600)
        assert job.returncode == 0, out


def _reductions_and_products(cu, a, sum_axis):
    cu.sum(a, (sum_axis,))
    cu.max(a, 1)
    cu.min(a, 1)
    cu.softmax(a, 1)
    cu.log_softmax(a, 1)
    cu.matmul(a, cu.transpose(a, (1, 0)))
    for s in backends.SEMIRINGS:
        cu.tropical_matmul(a, cu.transpose(a, (1, 0)), s)


def _exercise_every_kernel(cu):
    f32 = cu.asarray(np.arange(1, 13, dtype=np.float32).reshape(3, 4))  # no 0: no 0/0 warnings
    f64 = cu.astype(f32, np.float64)
    i64 = cu.asarray(np.array([[0, 1, 2, 0], [1, 1, 0, 2], [2, 0, 1, 1]]))
    for a in (f32, f64):
        for op in backends.UNARY_OPS:
            cu.unary(op, a)
        for op in backends.BINARY_OPS:
            cu.binary(op, a, a)
            cu.binary(op, a, cu.getitem(a, (slice(0, 1),)))
            cu.binary(op, a, 2.0)
            cu.binary(op, 2.0, a)
        cu.where(cu.binary("gt", a, 3.0), a, a)
        _reductions_and_products(cu, a, 0)
        cu.gather(a, 1, i64)
        cu.scatter_add((3, 4), 1, i64, a)
        cu.take_rows(a, cu.asarray(np.array([2, 0])))
        cu.scatter_rows_add(3, cu.asarray(np.array([2, 0, 2])), a)
        cu.getitem(a, (np.array([0, 2]),))
        cu.setitem(cu.copy(a), (np.array([0, 2]),), 1.0)
        cu.index_put_add((3, 4), (np.array([0, 0]),), cu.getitem(a, (slice(0, 2),)))
        img = cu.reshape(a, (1, 1, 3, 4))
        cols = cu.im2col(img, 2, 2, 1, 1)
        cu.col2im(cols, (1, 1, 3, 4), 2, 2, 1, 1)
        cu.max_pool2d(img, 2, 1)
        cu.astype(a, np.int64)
        cu.full((2,), 1.0, a.dtype)
    cu.sum(cu.binary("gt", f32, 3.0))
    for dtype in (np.int64, np.int32):  # integer division (fmod has a kernel of its own)
        n = cu.asarray(np.array([[-7, 1, 2], [3, -4, 5]], dtype=dtype))
        for op in ("floor_divide", "remainder", "fmod"):
            cu.binary(op, n, n)
            cu.binary(op, n, 3)
    cu.sum(i64, (1,))
    cu.arange(4, np.int64)
    config = nc.launch
    saved = (config.BLOCK_REDUCE_MIN, config.REDUCE_THREADS, config.TILE)
    try:
        config.BLOCK_REDUCE_MIN, config.REDUCE_THREADS, config.TILE = 1, 2, 2
        for a in (f32, f64):
            _reductions_and_products(cu, a, 1)
    finally:
        config.BLOCK_REDUCE_MIN, config.REDUCE_THREADS, config.TILE = saved
