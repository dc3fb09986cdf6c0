"""The public names and signatures the API promises exist where users look for them."""
import inspect

import numpy as np

from opgraph import backends
import opgraph as og
from opgraph import ops

FUNCTIONS = ("add sub mul div pow neg exp log log_eps sin cos sqrt rsqrt relu sigmoid tanh silu "
             "matmul sum mean reshape transpose cat chunk gather embedding where softmax log_softmax "
             "cross_entropy conv2d max_pool2d").split()
OPS = ("Add Sub Mul Div Pow Neg Exp Log LogWithEpsilon Sin Cos Sqrt Rsqrt ReLU Sigmoid Tanh SiLU "
       "MatMul BatchMatMul SumDim MeanDim Reshape Transpose Index Cat Chunk Gather Embedding Where "
       "Softmax LogSoftmax CrossEntropy Conv2D MaxPool2D").split()


def test_public_functions_and_tensor_methods():
    for name in FUNCTIONS:
        assert callable(getattr(og, name)), name
    for name in ("numpy", "item", "backward", "detach", "to", "sum", "relu", "reshape", "exp",
                 "softmax", "matmul", "chunk", "gather", "transpose", "mean", "log_eps"):
        assert callable(getattr(og.Tensor, name)), name
    assert isinstance(og.Tensor.T, property)
    for name in ("tensor", "zeros", "ones", "randn", "from_numpy", "Tape", "grad", "no_grad",
                 "gradcheck", "gradgradcheck", "set_default_backend", "Operation",
                 "MultiOutputOperation"):
        assert hasattr(og, name), name


def test_signatures_fixed_by_the_design():
    assert list(inspect.signature(og.grad).parameters)[:5] == [
        "output", "inputs", "grad_output", "retain_graph", "create_graph"]
    assert list(inspect.signature(og.Tensor.backward).parameters) == [
        "self", "grad", "retain_graph", "create_graph"]
    assert list(inspect.signature(og.gradcheck).parameters)[:5] == [
        "fn", "inputs", "eps", "atol", "rtol"]
    assert list(inspect.signature(og.tensor).parameters) == [
        "data", "requires_grad", "dtype", "backend"]
    assert list(inspect.signature(og.conv2d).parameters) == [
        "x", "weight", "bias", "stride", "padding"]


def test_every_op_is_a_documented_operation_class():
    for name in OPS:
        cls = getattr(ops, name)
        assert issubclass(cls, og.Operation), name
        doc = inspect.getdoc(cls)
        assert doc and ";" in doc, f"{name} docstring must state forward; backward"
    assert issubclass(ops.Chunk, og.MultiOutputOperation)


def test_backends_registry():
    assert isinstance(backends.get("numpy"), backends.NumpyBackend)
    assert backends.get("numpy") is backends.get("numpy")
    abstract = backends.Backend.__abstractmethods__
    assert {"matmul", "tropical_matmul", "im2col", "col2im", "max_pool2d", "gather",
            "scatter_add", "cat", "split", "where", "diagonal", "diag_embed"} <= abstract
    try:
        backends.get("tpu")
    except ValueError as e:
        assert "tpu" in str(e) and "numpy" in str(e)
    else:
        raise AssertionError("unknown backend accepted")


def test_set_default_backend_round_trip():
    before = og.get_default_backend()
    try:
        og.set_default_backend("numpy")
        assert og.zeros(2).backend.name == "numpy"
    finally:
        og.set_default_backend(before)
    assert np.dtype(og.zeros(1).dtype) == np.float32
