"""Bad inputs, table-driven: every public function has rows of calls that must fail with
a clear exception naming the op (or function) and the offending value, shape or dtype.

Each row is (call, exception types, message pattern). Where PyTorch and NumPy raise
different types, opgraph's exception is an instance of both: a dim out of range is an
IndexError (torch) and a ValueError (NumPy's AxisError) at once, so code written for
either catches it. Shape and value errors are ValueError, as in NumPy (torch says
RuntimeError); see "Where opgraph differs from PyTorch" in docs/tape.md.

A public function (in opgraph.__all__, or the target of a Tensor method) without a row
fails test_every_public_function_has_bad_input_rows: new functions join the table."""
import importlib
import inspect
import re

import numpy as np
import pytest

import opgraph as og

DIM = (IndexError, ValueError)  # a dim out of range: torch's IndexError, NumPy's AxisError


def X(*shape):
    return og.randn(*(shape or (2, 3)), seed=0)


def S():
    return og.tensor(3.0)


def I(*values):
    return og.tensor(list(values) or [0, 1])


def _backward_with(grad, scalar=True):
    y = X().requires_grad_() * 2
    (y.sum() if scalar else y).backward(grad)


BAD_INPUTS = {
    # ---- creation
    "tensor": [
        (lambda: og.tensor([1j]), TypeError, r"tensor:.*complex128"),
        (lambda: og.tensor(np.array([{}], dtype=object)), TypeError, r"tensor:.*object"),
        (lambda: og.tensor(["a"]), TypeError, r"tensor:.*<U1"),
        (lambda: og.tensor(np.array(["2020-01-01"], dtype="M8[D]")), TypeError,
         r"tensor:.*datetime64"),
        (lambda: og.tensor([1.0], dtype="foo"), TypeError, r"tensor: 'foo' is not a dtype"),
        (lambda: og.tensor([1.0], dtype=np.complex64), TypeError, r"tensor: dtype complex64"),
        (lambda: og.tensor(["a"], dtype=np.float32), TypeError, r"tensor:.*<U1"),
        (lambda: og.tensor(None), TypeError, r"tensor:.*NoneType"),
        (lambda: og.tensor([[1.0, 2.0], [3.0]]), ValueError, r"tensor:.*rectangular"),
        (lambda: og.tensor([1, 2], requires_grad=True), TypeError,
         r"only floating-point tensors can require grad, got dtype int64"),
        (lambda: og.tensor([1.0], requires_grad="yes"), TypeError,
         r"requires_grad must be a bool, got str"),
    ],
    "Tensor": [
        (lambda: og.Tensor(np.array([1j])), TypeError, r"tensor: dtype complex128"),
        (lambda: og.Tensor("a"), TypeError, r"tensor:.*str"),
    ],
    "from_numpy": [
        (lambda: og.from_numpy(np.array([1j])), TypeError, r"from_numpy: dtype complex128"),
        (lambda: og.from_numpy(np.array([{}], dtype=object)), TypeError,
         r"from_numpy: dtype object"),
        (lambda: og.from_numpy([1.0]), TypeError, r"from_numpy: expected a NumPy array, got list"),
    ],
    "zeros": [
        (lambda: og.zeros(2.5), TypeError, r"zeros: sizes must be ints, got 2\.5"),
        (lambda: og.zeros("a"), TypeError, r"zeros: sizes must be ints, got 'a'"),
        (lambda: og.zeros(-1), ValueError, r"zeros: negative size in shape \(-1,\)"),
        (lambda: og.zeros(2, dtype=object), TypeError, r"zeros: dtype object is not supported"),
        (lambda: og.zeros(2, dtype=np.complex128), TypeError, r"zeros: dtype complex128"),
        (lambda: og.zeros(2, dtype="foo"), TypeError, r"zeros: 'foo' is not a dtype"),
        (lambda: og.zeros((2, (3,))), TypeError, r"zeros: sizes must be ints, got \(3,\)"),
    ],
    "ones": [
        (lambda: og.ones(2, -1), ValueError, r"ones: negative size in shape \(2, -1\)"),
        (lambda: og.ones(None), TypeError, r"ones: sizes must be ints, got None"),
    ],
    "full": [
        (lambda: og.full((2,), "a"), TypeError, r"full: the fill value must be a number, got str"),
        (lambda: og.full((-1,), 1.0), ValueError, r"full: negative size"),
        (lambda: og.full(2.5, 1.0), TypeError, r"full: sizes must be ints"),
        (lambda: og.full((2,), 1.0, dtype="foo"), TypeError, r"full: 'foo' is not a dtype"),
    ],
    "randn": [
        (lambda: og.randn(-1), ValueError, r"randn: negative size in shape \(-1,\)"),
        (lambda: og.randn(2.5), TypeError, r"randn: sizes must be ints, got 2\.5"),
        (lambda: og.randn(2, dtype=np.int64), TypeError, r"randn: .*int64 is not a float dtype"),
        (lambda: og.randn(2, seed="a"), TypeError, r"randn: seed must be an int or None"),
    ],
    "rand": [
        (lambda: og.rand(-3), ValueError, r"rand: negative size"),
        (lambda: og.rand(2, dtype=object), TypeError, r"rand: dtype object"),
    ],
    "set_num_threads": [
        (lambda: og.set_num_threads(0), ValueError, r"set_num_threads: expected a positive int"),
        (lambda: og.set_num_threads(2.5), ValueError, r"set_num_threads:.*2\.5"),
        (lambda: og.set_num_threads("2"), ValueError, r"set_num_threads:.*'2'"),
    ],
    "set_default_backend": [
        (lambda: og.set_default_backend("foo"), ValueError, r"unknown backend 'foo'.*numpy"),
    ],
    "astype": [
        (lambda: X().astype(np.complex64), TypeError, r"astype: dtype complex64 is not supported"),
        (lambda: X().astype(object), TypeError, r"astype: dtype object"),
        (lambda: og.astype(X(), "foo"), TypeError, r"astype: 'foo' is not a dtype"),
    ],
    "to_backend": [
        (lambda: X().to("foo"), ValueError, r"unknown backend 'foo'"),
    ],
    # ---- arithmetic (mixed operands follow one conversion rule)
    "add": [
        (lambda: X() + "a", TypeError, r"Add: expected a Tensor, a number or a NumPy array, got str"),
        (lambda: X() + None, TypeError, r"Add:.*NoneType"),
        (lambda: X() + np.array(["a", "b", "c"]), TypeError, r"Add: unsupported dtype <U1"),
        (lambda: X() + np.array([1j]), TypeError, r"Add: unsupported dtype complex128"),
        (lambda: X() + 1j, TypeError, r"Add:.*complex"),
        (lambda: X() + og.zeros(4), ValueError, r"Add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    ],
    "sub": [
        (lambda: og.sub(X(), "a"), TypeError, r"Sub:.*str"),
        (lambda: og.tensor([True]) - og.tensor([False]), TypeError, r"Sub: subtracting two bool"),
    ],
    "mul": [(lambda: X() * np.ones((3, 2)), ValueError, r"Mul: shapes \(2, 3\) and \(3, 2\)")],
    "div": [(lambda: og.div(X(), np.array([{}], dtype=object)), TypeError, r"Div:.*object")],
    "floor_divide": [
        (lambda: I(1, 2) // 0, ZeroDivisionError, r"FloorDivide: integer division by zero \(int64"),
        (lambda: og.tensor([True]) // og.tensor([True]), TypeError, r"FloorDivide:.*two bool"),
        (lambda: og.tensor([1], dtype=np.uint8) // 300, OverflowError,
         r"FloorDivide: the value 300 cannot be converted to uint8"),
        (lambda: X() // X(3, 2), ValueError, r"FloorDivide: shapes \(2, 3\) and \(3, 2\)"),
        (lambda: X() // "a", TypeError, r"FloorDivide: expected a Tensor.*got str"),
    ],
    "remainder": [
        (lambda: I(1, 2) % I(1, 0), ZeroDivisionError, r"Remainder: integer division by zero"),
        (lambda: 5 % I(0, 1), ZeroDivisionError, r"Remainder: integer division by zero"),
        (lambda: X() % np.ones((3, 2)), ValueError, r"Remainder: shapes \(2, 3\) and \(3, 2\)"),
    ],
    "fmod": [
        (lambda: og.fmod(I(1), 0), ZeroDivisionError, r"Fmod: integer division by zero"),
        (lambda: og.fmod(X(), [1j]), TypeError, r"Fmod:.*complex"),
    ],
    "neg": [
        (lambda: og.neg("a"), TypeError, r"Neg:.*str"),
        (lambda: -og.tensor([True]), TypeError, r"Neg: negating a bool tensor"),
    ],
    "pow": [
        (lambda: og.pow(I(1, 2), -1), ValueError,
         r"Pow: an integer tensor \(int64\) to the negative integer power -1"),
        (lambda: og.pow(I(1, 2), og.tensor([-1, 1])), ValueError,
         r"PowTensor: integer tensors .* negative integer powers"),
        (lambda: og.pow(X(), "a"), TypeError, r"Pow: exponent must be a number or a tensor, got str"),
        (lambda: og.pow(X(), 1j), TypeError, r"Pow: exponent .* got complex"),
    ],
    "eq": [(lambda: og.eq(X(), "a"), TypeError, r"eq:.*str")],
    "ne": [(lambda: og.ne(X(), og.zeros(4)), ValueError, r"ne: shapes \(2, 3\) and \(4,\)")],
    "gt": [(lambda: X() > np.array([1j]), TypeError, r"gt:.*complex128")],
    "ge": [(lambda: og.ge(X(), None), TypeError, r"ge:.*NoneType")],
    "lt": [(lambda: og.lt(X(), og.zeros(5)), ValueError, r"lt: shapes")],
    "le": [(lambda: og.le(X(), "a"), TypeError, r"le:.*str")],
    # ---- unary
    "exp": [(lambda: og.exp("a"), TypeError, r"Exp:.*str")],
    "log": [(lambda: og.log(None), TypeError, r"Log:.*NoneType")],
    "log_eps": [
        (lambda: og.log_eps(X(), "a"), TypeError, r"log_eps: eps must be a number, got str 'a'"),
        (lambda: og.log_eps(X(), None), TypeError, r"log_eps: eps must be a number, got NoneType"),
        (lambda: og.log_eps(X(), X()), TypeError, r"log_eps: eps must be a number, got Tensor"),
    ],
    "sin": [(lambda: og.sin(np.array([1j])), TypeError, r"Sin:.*complex128")],
    "cos": [(lambda: og.cos("a"), TypeError, r"Cos:.*str")],
    "sqrt": [(lambda: og.sqrt({}), TypeError, r"Sqrt:.*dict")],
    "rsqrt": [(lambda: og.rsqrt("a"), TypeError, r"Rsqrt:.*str")],
    "abs": [(lambda: og.abs(None), TypeError, r"Abs:.*NoneType")],
    "relu": [
        (lambda: og.relu(og.tensor([True])), TypeError, r"ReLU: bool tensors are not supported"),
        (lambda: og.relu(None), TypeError, r"ReLU:.*NoneType")],
    "sigmoid": [(lambda: og.sigmoid("a"), TypeError, r"Sigmoid:.*str")],
    "tanh": [(lambda: og.tanh(np.array(["a"])), TypeError, r"Tanh:.*<U1")],
    "silu": [(lambda: og.silu(object()), TypeError, r"SiLU:.*object")],
    "where": [
        (lambda: og.where("a", X(), X()), TypeError, r"Where: the condition of where\(cond, x, y\) must be a bool tensor or array, got str"),
        (lambda: og.where(np.array(["a"]), X(), X()), TypeError, r"Where: the condition .* got dtype <U1"),
        (lambda: og.where(None, X(), X()), TypeError, r"Where: the condition .* got NoneType"),
        (lambda: og.where(X() > 0, X(), "a"), TypeError, r"Where:.*str"),
        (lambda: og.where(np.ones(4) > 0, X(), X()), ValueError,
         r"Where: shapes \(4,\) and \(2, 3\) and \(2, 3\) cannot be broadcast"),
    ],
    # ---- linear algebra
    "matmul": [
        (lambda: og.matmul(X(), X()), ValueError, r"MatMul: shapes \(2, 3\) and \(2, 3\) are not aligned"),
        (lambda: og.matmul(S(), S()), ValueError, r"MatMul: scalar operands"),
        (lambda: og.matmul(X(), "a"), TypeError, r"MatMul:.*str"),
        (lambda: og.matmul(og.zeros(3), og.zeros(4)), ValueError, r"MatMul: shapes \(3,\) and \(4,\)"),
    ],
    # ---- reductions
    "sum": [
        (lambda: og.sum(X(), 0, keepdim="yes"), TypeError, r"SumDim \(sum\): keepdim must be a bool, got str 'yes'"),
        (lambda: og.sum(X(), 5), DIM, r"SumDim: dim 5 is out of range for a tensor with 2 dims"),
        (lambda: og.sum(X(), 0.5), TypeError, r"SumDim: dim must be an int, got float 0\.5"),
        (lambda: og.sum(X(), "a"), TypeError, r"SumDim: dim must be an int, got str"),
        (lambda: og.sum(X(), (0, 0)), ValueError, r"SumDim: repeated dim in \(0, 0\)"),
    ],
    "mean": [
        (lambda: og.mean(X(), 0, keepdim="no"), TypeError, r"MeanDim \(mean\): keepdim must be a bool"),
        (lambda: og.mean(X(), -3), DIM, r"MeanDim: dim -3 is out of range"),
    ],
    "max": [
        (lambda: og.max(X(), 5), DIM, r"MaxDim: dim 5 is out of range"),
        (lambda: og.max(og.zeros(0)), ValueError, r"max: of an empty tensor of shape \(0,\)"),
        (lambda: og.max(og.zeros(0, 3), 0), DIM, r"MaxDim: max over dim 0 of a tensor of shape \(0, 3\)"),
        (lambda: og.max(X(), 0, keepdim="a"), TypeError, r"MaxDim \(max\): keepdim must be a bool"),
    ],
    "argmax": [
        (lambda: og.argmax(X(), 5), DIM, r"argmax: dim 5 is out of range for a tensor with 2 dims"),
        (lambda: og.argmax(og.zeros(0)), DIM, r"argmax: of an empty tensor of shape \(0,\)"),
        (lambda: og.argmax(og.zeros(0, 3), 0), DIM, r"argmax: dim 0 of a tensor of shape \(0, 3\) is empty"),
        (lambda: og.argmax(X(), 0.5), TypeError, r"argmax: dim must be an int"),
        (lambda: og.argmax(X(), 0, keepdim="yes"), TypeError, r"argmax: keepdim must be a bool"),
        (lambda: og.argmax("a"), TypeError, r"argmax:.*str"),
    ],
    # ---- shapes
    "reshape": [
        (lambda: X().reshape(2.5, 2), TypeError, r"Reshape: cannot reshape to \(2\.5, 2\): sizes must be ints, got 2\.5"),
        (lambda: X().reshape("a"), TypeError, r"Reshape: cannot reshape to \('a',\): sizes must be ints, got 'a'"),
        (lambda: X().reshape(None), TypeError, r"Reshape: .*sizes must be ints, got None"),
        (lambda: X().reshape(4, 2), ValueError, r"Reshape: cannot reshape \(2, 3\) \(size 6\) into \(4, 2\)"),
        (lambda: X().reshape(-1, -1), ValueError, r"Reshape: only one dimension can be -1"),
        (lambda: X().reshape(-2, 3), ValueError, r"Reshape: negative dimension in shape \(-2, 3\)"),
    ],
    "transpose": [
        (lambda: og.transpose(X(), (0, 5)), DIM, r"Transpose: dim 5 is out of range for a tensor with 2 dims"),
        (lambda: og.transpose(X(), 0, 2), DIM, r"Transpose: dim 2 is out of range"),
        (lambda: og.transpose(X(), (0, 0)), ValueError, r"Transpose: axes \(0, 0\) are not a permutation"),
        (lambda: og.transpose(X(), (0,)), ValueError, r"Transpose: axes \(0,\) are not a permutation"),
        (lambda: og.transpose(X(), (0.5, 1)), TypeError, r"Transpose: dim must be an int, got float"),
    ],
    "permute": [
        (lambda: X().permute(0, 5), DIM, r"Transpose: dim 5 is out of range"),
        (lambda: X().permute(-3, 0), DIM, r"Transpose: dim -3 is out of range"),
    ],
    "broadcast_to": [
        (lambda: og.broadcast_to(X(), (3, 3)), ValueError, r"BroadcastTo: shapes \(2, 3\) and \(3, 3\)"),
        (lambda: og.broadcast_to(X(), "a"), TypeError, r"BroadcastTo: shape entries must be ints, got 'a'"),
        (lambda: og.broadcast_to(X(), (2.5, 3)), TypeError, r"BroadcastTo: shape entries must be ints"),
        (lambda: og.broadcast_to(X(), (-2, 3)), ValueError, r"BroadcastTo: negative size"),
    ],
    "flatten": [
        (lambda: og.flatten(X(), 3), DIM, r"Flatten: dim 3 is out of range"),
        (lambda: og.flatten(S(), 1), DIM, r"Flatten: dim 1 is out of range for a tensor with 0 dims"),
        (lambda: og.flatten(X(), 1, 0), ValueError, r"Flatten: start_dim 1 comes after end_dim 0"),
        (lambda: og.flatten(X(), 0.5), TypeError, r"Flatten: dim must be an int"),
    ],
    "squeeze": [
        (lambda: X(1, 3).squeeze((0, -2)), ValueError,
         r"Squeeze: dim \(0, -2\) appears more than once"),
        (lambda: X(1, 3).squeeze((0, 5)), DIM, r"Squeeze: dim 5 is out of range"),
        (lambda: og.squeeze(X(), 5), DIM, r"Squeeze: dim 5 is out of range"),
        (lambda: og.squeeze(X(), 0.5), TypeError, r"Squeeze: dim must be an int"),
    ],
    "unsqueeze": [
        (lambda: og.unsqueeze(X(), np.array([1j])), TypeError, r"dim must be an int, got ndarray"),
        (lambda: og.unsqueeze(X(), 5), DIM, r"Unsqueeze: dim 5 is out of range for a tensor of shape \(2, 3\)"),
        (lambda: og.unsqueeze(X(), 0.5), TypeError, r"Unsqueeze: dim must be an int, got float"),
    ],
    "index": [
        (lambda: X()[[0.5, 1.7]], IndexError, r"Index: index arrays must be integers.*float64"),
        (lambda: X()[np.array([0.0])], IndexError, r"Index: index arrays must be integers.*float64"),
        (lambda: X()[og.tensor([0.5])], IndexError, r"Index: index arrays must be integers.*float32"),
        (lambda: X()[[None]], IndexError, r"Index: index arrays must be integers.*object"),
        (lambda: X()[0.5], IndexError, r"Index: key \[0\.5\] is invalid for a tensor of shape \(2, 3\)"),
        (lambda: X()[5], IndexError, r"Index: key \[5\] .*out of bounds for axis 0 with size 2"),
        (lambda: X()[[0, 5]], IndexError, r"Index: index out of range: values span \[0, 5\] .*\(dim 0 has size 2\)"),
        (lambda: X()["a"], IndexError, r"Index: key \['a'\] is invalid"),
        (lambda: X()[0, 0, 0], IndexError, r"Index: .*too many indices"),
        (lambda: X()[[[0, 1], [1]]], IndexError, r"Index: the index list .* is ragged"),
    ],
    "cat": [
        (lambda: og.cat([], 0), ValueError, r"Cat: needs at least one tensor"),
        (lambda: og.cat([S(), S()], 0), ValueError, r"Cat: the tensor at position 0 is 0-d"),
        (lambda: og.cat([X(), og.zeros(2, 4)], 0), ValueError, r"Cat: shapes \(2, 3\), \(2, 4\) differ outside dim 0"),
        (lambda: og.cat([X(), X()], 5), DIM, r"Cat: dim 5 is out of range"),
        (lambda: og.cat(X(), 0), TypeError, r"Cat: expected a list or tuple of tensors, got Tensor"),
        (lambda: og.cat([X(), "a"], 0), TypeError, r"Cat:.*str"),
    ],
    "stack": [
        (lambda: og.stack([]), ValueError, r"stack: needs at least one tensor"),
        (lambda: og.stack(X()), TypeError, r"stack: expected a list or tuple of tensors"),
        (lambda: og.stack([X(), og.zeros(3)], 0), ValueError, r"stack: expects tensors of one "
         r"shape, got \(2, 3\) at position 0 and \(3,\) at position 1"),
        (lambda: og.stack([X(), X()], 3), DIM, r"stack: dim 3 is out of range for stacking "
         r"tensors of 2 dims \(expected -3 <= dim <= 2\)"),
        (lambda: og.stack([X(), "a"]), TypeError, r"stack: expected a Tensor.*got str"),
    ],
    "chunk": [
        (lambda: og.chunk(X(), 1.5), TypeError, r"Chunk: the number of chunks must be an int, got float 1\.5"),
        (lambda: og.chunk(X(), 0), ValueError, r"Chunk: the number of chunks must be >= 1, got 0"),
        (lambda: og.chunk(S(), 2), ValueError, r"Chunk: expects a tensor with at least 1 dim, got a 0-d"),
        (lambda: og.chunk(X(), 2, 5), DIM, r"Chunk: dim 5 is out of range"),
    ],
    # ---- indexing ops
    "gather": [
        (lambda: og.gather(X(), 1, X()), TypeError, r"Gather: indices must be integers, got dtype float32"),
        (lambda: og.gather(X(), 1, og.tensor([0, 1])), ValueError, r"Gather: index of shape \(2,\) does not fit"),
        (lambda: og.gather(X(), 2, og.tensor([[0], [1]])), DIM, r"Gather: dim 2 is out of range"),
        (lambda: og.gather(S(), 1, og.tensor(0)), DIM, r"Gather: dim 1 is out of range for a tensor with 0 dims"),
    ],
    "embedding": [
        (lambda: og.embedding(X(), X()), TypeError, r"Embedding: indices must be integers, got dtype float32"),
        (lambda: og.embedding(og.randn(3), I(0)), ValueError, r"Embedding: weight must be 2-D"),
    ],
    # ---- neural-network functions
    "softmax": [
        (lambda: og.softmax(X(), 5), DIM, r"Softmax: dim 5 is out of range"),
        (lambda: og.softmax(X(), 0.5), TypeError, r"Softmax: dim must be an int"),
    ],
    "log_softmax": [(lambda: og.log_softmax(X(), -3), DIM, r"LogSoftmax: dim -3 is out of range")],
    "cross_entropy": [
        (lambda: og.cross_entropy(X(), I(0, 1, 2)), ValueError, r"CrossEntropy: targets must have shape \(2,\)"),
        (lambda: og.cross_entropy(X(), og.tensor([0.0, 1.0])), TypeError, r"CrossEntropy: indices must be integers"),
        (lambda: og.cross_entropy(og.zeros(3), og.tensor(1)), ValueError, r"CrossEntropy: logits must be \(N, C\), got shape \(3,\)"),
    ],
    "conv2d": [
        (lambda: og.conv2d(og.zeros(1, 2, 4, 4), og.zeros(1, 3, 2, 2)), ValueError, r"Conv2D: input has 2 channels"),
        (lambda: og.conv2d(og.zeros(2, 4, 4), og.zeros(1, 2, 2, 2)), ValueError, r"Conv2D: expects input \(N, C, H, W\)"),
        (lambda: og.conv2d(og.zeros(1, 1, 4, 4), og.zeros(1, 1, 2, 2), stride=0), ValueError, r"Conv2D: stride must be a positive int"),
        (lambda: og.conv2d(og.zeros(1, 1, 4, 4), og.zeros(1, 1, 2, 2), padding=-1), ValueError, r"Conv2D: padding must be a non-negative int"),
        (lambda: og.conv2d(og.zeros(1, 1, 2, 2), og.zeros(1, 1, 3, 3)), ValueError, r"Conv2D: kernel 3x3 does not fit input 2x2"),
        (lambda: og.conv2d(og.zeros(1, 1, 4, 4), "a"), TypeError, r"Conv2D:.*str"),
    ],
    "max_pool2d": [
        (lambda: og.max_pool2d(og.zeros(1, 1, 4, 4), 0), ValueError, r"MaxPool2D: kernel_size must be a positive int"),
        (lambda: og.max_pool2d(og.zeros(1, 1, 2, 2), 3), ValueError, r"MaxPool2D: kernel 3 is larger than the input 2x2"),
        (lambda: og.max_pool2d(og.zeros(1, 1, 4, 4), 2, 0), ValueError, r"MaxPool2D: stride must be a positive int"),
    ],
    # ---- einsum family
    "einsum": [
        (lambda: og.einsum("ij,jk->ik", X(), X()), ValueError, r"einsum\('ij,jk->ik'\): operands disagree on the size of index 'j'"),
        (lambda: og.einsum("ij,jk->ik", X()), ValueError, r"einsum\('ij,jk->ik'\): 2 subscript terms but 1 operand"),
        (lambda: og.einsum("i$->i", X()), ValueError, r"einsum\('i\$->i'\): invalid character '\$'"),
        (lambda: og.einsum("ij->ij", "a"), TypeError, r"Einsum:.*str"),
        (lambda: og.einsum("i->i", np.array([1j])), TypeError, r"Einsum:.*complex128"),
    ],
    "einsum_path": [
        (lambda: og.einsum_path("ij,jk->ik", X(), X()), ValueError, r"einsum\('ij,jk->ik'\): operands disagree"),
    ],
    "tropical_einsum": [
        (lambda: og.tropical_einsum("ij,jk->ik", X(), X().T, semiring="foo"), ValueError, r"tropical_einsum: unknown semiring 'foo'"),
        (lambda: og.tropical_einsum("i->", np.array([1j])), TypeError, r"TropicalEinsum:.*complex128"),
        (lambda: og.tropical_einsum("i->", "a"), TypeError, r"TropicalEinsum:.*str"),
    ],
    "register_semiring": [
        (lambda: og.register_semiring("foo"), TypeError, r"register_semiring: expected a Semiring, got str"),
    ],
    # ---- autodiff
    "backward": [
        (lambda: _backward_with("ab"), TypeError, r"backward: grad must be a Tensor, a number or a numeric array, got str"),
        (lambda: _backward_with(np.array([1j])), TypeError, r"backward: grad .* dtype complex128"),
        (lambda: _backward_with(np.ones(3), scalar=False), ValueError, r"backward: grad of shape \(3,\) for an output of shape \(2, 3\)"),
        (lambda: _backward_with(None, scalar=False), ValueError, r"backward on a non-scalar tensor of shape \(2, 3\)"),
    ],
    "grad": [
        (lambda: og.grad("a", X()), TypeError, r"grad: output 0 is a str, not a Tensor"),
        (lambda: og.grad((X().requires_grad_() * 2).sum(), 3), TypeError, r"grad: input 0 is a int"),
        (lambda: og.grad((X().requires_grad_() * 2).sum(), X()), ValueError, r"grad: input 0 .* does not require grad"),
    ],
    "gradcheck": [
        (lambda: og.gradcheck(3, [X()]), TypeError, r"gradcheck: fn must be callable, got int"),
        (lambda: og.gradcheck(lambda a: a, [3.0]), TypeError, r"gradcheck: fn returned float"),
        (lambda: og.gradcheck(lambda a: a, 3.0), TypeError, r"gradcheck: inputs must be a list or tuple"),
        (lambda: og.gradcheck(lambda a: a * 2, [og.randn(2, requires_grad=True)]), TypeError,
         r"gradcheck: input 0 is float32; use float64"),
    ],
    "gradgradcheck": [
        (lambda: og.gradgradcheck(lambda a: a, "a"), TypeError, r"gradgradcheck: inputs must be a list"),
        (lambda: og.gradgradcheck(None, [X()]), TypeError, r"gradgradcheck: fn must be callable"),
    ],
    # ---- the torch-style Tensor API: reductions, clamping, shapes, indexing
    "min": [
        (lambda: og.min(X(), 5), DIM, r"MinDim: dim 5 is out of range"),
        (lambda: og.min(og.zeros(0)), DIM, r"min: of an empty tensor of shape \(0,\)"),
        (lambda: og.min(X(), 0, keepdim="a"), TypeError, r"MinDim \(min\): keepdim must be a bool"),
    ],
    "argmin": [
        (lambda: og.argmin(X(), 5), DIM, r"argmin: dim 5 is out of range"),
        (lambda: og.argmin(og.zeros(0)), DIM, r"argmin: of an empty tensor of shape \(0,\)"),
    ],
    "amax": [
        (lambda: og.amax(X(), 5), DIM, r"AMax: dim 5 is out of range"),
        (lambda: og.amax(og.zeros(0, 2), 0), ValueError, r"AMax: max over dim 0 of a tensor of "
                                                         r"shape \(0, 2\)"),
        (lambda: og.amax(X(), (0, 0)), ValueError, r"AMax: repeated dim in \(0, 0\)"),
    ],
    "amin": [(lambda: og.amin(X(), -3), DIM, r"AMin: dim -3 is out of range")],
    "maximum": [
        (lambda: og.maximum(X(), X(4)), ValueError, r"Maximum: shapes \(2, 3\) and \(4,\)"),
        (lambda: og.maximum(X(), "a"), TypeError, r"Maximum: expected a Tensor.*got str"),
    ],
    "minimum": [(lambda: og.minimum(X(3), X(4)), ValueError, r"Minimum: shapes \(3,\) and \(4,\)")],
    "clamp": [
        (lambda: og.clamp(X()), ValueError, r"clamp: at least one of min and max"),
        (lambda: og.clamp(X(), "a"), TypeError, r"clamp: min must be a number.*str"),
        (lambda: og.clamp(X(), X(4)), ValueError, r"ClampTensor: shapes \(2, 3\) and \(4,\)"),
    ],
    "clip": [(lambda: og.clip(X(), max=[1]), TypeError, r"clamp: max must be a number.*list")],
    "var": [
        (lambda: og.var(I()), TypeError, r"var: needs a floating-point tensor, got dtype int64"),
        (lambda: og.var(X(), 5), DIM, r"Var: dim 5 is out of range"),
        (lambda: og.var(X(), unbiased=True, correction=0), TypeError, r"var: give unbiased or "
                                                                      r"correction, not both"),
        (lambda: og.var(X(), correction="a"), TypeError, r"var: correction must be a number"),
        (lambda: og.var(X(), 0, keepdim=2), TypeError, r"Var: keepdim must be a bool"),
    ],
    "std": [(lambda: og.std(I()), TypeError, r"std: needs a floating-point tensor")],
    "logsumexp": [
        (lambda: og.logsumexp(I()), TypeError, r"logsumexp: needs a floating-point tensor"),
        (lambda: og.logsumexp(X(), 4), DIM, r"LogSumExp: dim 4 is out of range"),
    ],
    "masked_fill": [
        (lambda: og.masked_fill("a", I(), 0), TypeError, r"masked_fill: expected a Tensor.*got str"),
        (lambda: og.masked_fill(X(), X(), 0.0), TypeError, r"masked_fill: the mask must be a "
                                                           r"bool tensor, got dtype float32"),
        (lambda: og.masked_fill(X(), og.ones(4, dtype=og.bool), 0.0), ValueError,
         r"masked_fill: shapes \(4,\) and \(2, 3\)"),
        (lambda: og.masked_fill(X(), X() > 0, X()), ValueError, r"masked_fill: only supports a "
                                                                r"0-d tensor"),
    ],
    "expand": [
        (lambda: og.expand(None, 2), TypeError, r"expand: expected a Tensor.*got NoneType"),
        (lambda: X().expand(3), ValueError, r"expand: the number of sizes \(1\) must be at least"),
        (lambda: X().expand(-1, -1, 3), ValueError, r"expand: -1 is not allowed for a new "
                                                    r"leading dim"),
        (lambda: X().expand(4, 3), ValueError, r"BroadcastTo: shapes \(2, 3\) and \(4, 3\)"),
    ],
    "split": [
        (lambda: X().split(["a"]), ValueError, r"split: the sizes must be non-negative ints, got \['a'\]"),
        (lambda: og.split("a", 1), TypeError, r"split: expected a Tensor.*got str"),
        (lambda: og.split(X(), 0), ValueError, r"split: split_size must be a positive int, got 0"),
        (lambda: og.split(X(), [1, 3]), ValueError, r"Split: sizes \[1, 3\] must .* add up to 2"),
        (lambda: og.split(X(), 1, 5), DIM, r"Split: dim 5 is out of range"),
    ],
    "index_select": [
        (lambda: og.index_select(object(), 0, I()), TypeError, r"index_select: expected a Tensor.*got object"),
        (lambda: og.index_select(X(), 0, I(5)), ValueError, r"IndexSelect: index out of range"),
        (lambda: og.index_select(X(), 0, og.tensor([[0]])), ValueError, r"index_select: index "
                                                                        r"must be 1-D or 0-d"),
        (lambda: og.index_select(X(), 0, og.tensor([0.5])), TypeError, r"IndexSelect: indices "
                                                                       r"must be integers"),
    ],
    "scatter": [
        (lambda: X().scatter(1, I(0, 1).reshape(2, 1), "a"), TypeError, r"scatter: src must be a tensor or a number, got str"),
        (lambda: og.scatter(None, 0, I(), 1.0), TypeError, r"scatter: expected a Tensor.*got NoneType"),
        (lambda: og.scatter(X(), 1, og.tensor([[0], [0], [0]]), 1.0), ValueError,
         r"Scatter: index of shape \(3, 1\) does not fit shape \(2, 3\)"),
        (lambda: og.scatter(X(), 1, og.tensor([[3]]), 1.0), ValueError, r"Scatter: index out of "
                                                                        r"range"),
        (lambda: og.scatter(X(), 1, og.tensor([[0]])), TypeError, r"scatter: give exactly one "
                                                                  r"of src and value"),
        (lambda: og.scatter(X(), 1, og.tensor([[0]]), og.ones(1, 1, dtype=og.float64)),
         TypeError, r"scatter: src must be a tensor of the input's dtype float32, got float64"),
    ],
    "scatter_add": [
        (lambda: og.scatter_add("a", 0, I(0), X(1)), TypeError, r"scatter_add: expected a Tensor.*got str"),
        (lambda: og.scatter_add(X(), 1, og.tensor([[7]]), X()), ValueError, r"ScatterAdd: index "
                                                                            r"out of range"),
        (lambda: og.scatter_add(X(), 1, og.tensor([[0]]), 2.0), TypeError, r"scatter_add: src "
                                                                           r"must be a tensor"),
    ],
    "mm": [
        (lambda: og.mm(X(), X(3)), ValueError, r"mm: expects two 2-D tensors, got \(2, 3\) and "
                                               r"\(3,\)"),
        (lambda: og.mm(X(), X()), ValueError, r"MatMul: shapes \(2, 3\) and \(2, 3\) are not "
                                              r"aligned"),
    ],
    "t": [(lambda: og.t(X(2, 2, 2)), ValueError, r"t: expects a tensor with <= 2 dims, but it "
                                                  r"has 3"),
          (lambda: og.t({}), TypeError, r"t: expected a Tensor.*got dict")],
    "clone": [(lambda: og.clone("a"), TypeError, r"clone: expected a Tensor.*got str")],
    "to": [
        (lambda: X().to("nope"), ValueError, r"unknown backend 'nope'"),
        (lambda: X().to(3.5), TypeError, r"astype: 3.5 is not a dtype"),
        (lambda: X().to("numpy", "cuda"), TypeError, r"to: unexpected argument 'cuda'"),
    ],
    # ---- in-place methods (and x[key] = value)
    **{name: [(lambda name=name: getattr(og.randn(2, 3, requires_grad=True), name)(), RuntimeError,
               rf"{name}: a leaf tensor that requires grad \(shape \(2, 3\)\) is being used "
               r"in an in-place operation")]
       for name in ("neg_", "exp_", "sqrt_", "rsqrt_", "relu_", "sigmoid_", "tanh_", "abs_",
                    "log_", "sin_", "cos_", "zero_")},
    "add_": [
        (lambda: X().add_("a"), TypeError, r"Add: expected a Tensor.*got str"),
        (lambda: X().add_(X(3, 2)), ValueError, r"Add: shapes \(2, 3\) and \(3, 2\)"),
        (lambda: I().add_(0.5), RuntimeError, r"add_: result type float\d+ can't be cast to the "
                                              r"desired output type int64"),
        (lambda: X().add_(X(2, 2, 3)), RuntimeError, r"add_: output with shape \[2, 3\] doesn't "
                                                     r"match the broadcast shape \[2, 2, 3\]"),
        (lambda: X()[:1].expand(3, 3).add_(1), RuntimeError, r"add_: unsupported operation.*"
                                                             r"expanded"),
    ],
    "sub_": [(lambda: X().sub_(X(4)), ValueError, r"Sub: shapes \(2, 3\) and \(4,\)")],
    "mul_": [(lambda: X().mul_(None), TypeError, r"Mul: expected a Tensor.*NoneType"),
             (lambda: I().mul_(2.5), RuntimeError,  # torch's result dtype, not NumPy's float64
              r"mul_: result type float32 can't be cast to the desired output type int64"),
             (lambda: I().mul_(og.tensor(1.5)), RuntimeError, r"mul_: result type float32")],
    "floor_divide_": [(lambda: X().requires_grad_().floor_divide_(2), RuntimeError,
                       r"floor_divide_:.*leaf"),
                      (lambda: I().floor_divide_(0), ZeroDivisionError, r"FloorDivide")],
    "remainder_": [(lambda: I().remainder_(2.5), RuntimeError,
                    r"remainder_: result type float32 can't be cast to the desired output type "
                    r"int64")],
    "fmod_": [(lambda: I().fmod_(0), ZeroDivisionError, r"Fmod: integer division by zero")],
    "div_": [(lambda: I().div_(2), RuntimeError, r"div_: result type float32 can't be cast to "
                                                 r"the desired output type int64")],
    "pow_": [(lambda: X().pow_("a"), TypeError, r"Pow: exponent must be a number or a tensor")],
    "clamp_": [
        (lambda: X().clamp_(), ValueError, r"clamp: at least one of min and max"),
        (lambda: X().clamp_("a"), TypeError, r"clamp: min must be a number"),
    ],
    "clip_": [(lambda: X().clip_(), ValueError, r"clamp: at least one of min and max")],
    "fill_": [
        (lambda: X().fill_(X()), RuntimeError, r"fill_: only supports a number or a 0-d tensor"),
        (lambda: X().fill_("a"), TypeError, r"expected a number, an array or a Tensor, got str"),
    ],
    "copy_": [
        (lambda: X().copy_(X(4)), RuntimeError, r"copy_: the source of shape \(4,\) cannot be "
                                                r"broadcast to the destination's shape \(2, 3\)"),
        (lambda: X().copy_("abc"), TypeError, r"expected a number, an array or a Tensor, got str"),
    ],
    "masked_fill_": [
        (lambda: X().masked_fill_(X(), 0.0), TypeError, r"masked_fill: the mask must be a bool"),
        (lambda: X().masked_fill_(X() > 0, X()), ValueError, r"masked_fill: only supports a 0-d"),
    ],
    "addcmul_": [(lambda: X().addcmul_(X(4), X(4)), ValueError, r"Add: shapes \(2, 3\) and \(4,\)")],
    "addcdiv_": [(lambda: X().addcdiv_(X(), "a"), TypeError, r"Div: expected a Tensor.*str")],
    "lerp_": [(lambda: X().lerp_(X(5), 0.5), ValueError, r"Sub: shapes \(5,\) and \(2, 3\)")],
    "uniform_": [(lambda: I().uniform_(), TypeError, r"uniform_: needs a floating-point tensor")],
    "normal_": [(lambda: I().normal_(), TypeError, r"normal_: needs a floating-point tensor")],
    "setitem": [
        (lambda: X().__setitem__(0, X(5)), RuntimeError, r"setitem: shape mismatch: a value of "
                                                         r"shape \(5,\) cannot be broadcast"),
        (lambda: X().__setitem__(5, 1.0), IndexError, r"Index: key \[5\] is invalid"),
        (lambda: og.randn(2, requires_grad=True).__setitem__(0, 1.0), RuntimeError,
         r"setitem: a leaf tensor that requires grad"),
        (lambda: X().__setitem__(og.ones(3, dtype=og.bool), 0.0), IndexError,
         r"Index: the shape of the mask \[3\] at index 0 does not match"),
    ],
    # ---- creation (torch-style)
    "arange": [
        (lambda: og.arange(3, dtype="foo"), TypeError, r"arange: 'foo' is not a dtype"),
        (lambda: og.arange(I()), ValueError, r"arange: end must be a number or a one-element tensor, got a tensor of shape \(2,\)"),
        (lambda: og.arange(0, 5, 0), ValueError, r"arange: step must be nonzero"),
        (lambda: og.arange(5, 0), ValueError, r"arange: upper bound and larger bound inconsistent"),
        (lambda: og.arange("a"), TypeError, r"arange: end must be a number, got str"),
        (lambda: og.arange(0, float("inf")), ValueError, r"arange: start, end and step must be "
                                                         r"finite"),
    ],
    "linspace": [
        (lambda: og.linspace(0, 1, 3, dtype=complex), TypeError, r"linspace: dtype complex128 is not supported"),
        (lambda: og.linspace(0, 1, -1), ValueError, r"linspace: steps must be a non-negative int"),
        (lambda: og.linspace(0, 1, 2.5), ValueError, r"linspace: steps must be a non-negative int"),
        (lambda: og.linspace("a", 1, 3), TypeError, r"linspace: start must be a number"),
    ],
    "eye": [
        (lambda: og.eye(2, dtype=object), TypeError, r"eye: dtype object is not supported"),
        (lambda: og.eye(-1), ValueError, r"eye: n must be a non-negative int, got -1"),
        (lambda: og.eye(2, 2.5), ValueError, r"eye: m must be a non-negative int, got 2.5"),
    ],
    "zeros_like": [(lambda: og.zeros_like(np.zeros(2)), TypeError, r"zeros_like: expected a "
                                                                   r"Tensor, got ndarray")],
    "ones_like": [(lambda: og.ones_like(3), TypeError, r"ones_like: expected a Tensor, got int")],
    "full_like": [
        (lambda: og.full_like(X(), "a"), TypeError, r"full_like: the fill value must be a number"),
        (lambda: og.full_like([1], 1), TypeError, r"full_like: expected a Tensor, got list"),
    ],
    "randn_like": [(lambda: og.randn_like(I()), TypeError, r"randn_like: random samples need a "
                                                           r"floating-point dtype, got int64")],
    "rand_like": [(lambda: og.rand_like("x"), TypeError, r"rand_like: expected a Tensor, got str")],
    "manual_seed": [
        (lambda: og.manual_seed(1.5), TypeError, r"manual_seed: seed must be an int, got float"),
        (lambda: og.manual_seed(2 ** 70), ValueError, r"manual_seed: seed .* is out of range"),
    ],
    # ---- files
    "save": [
        (lambda: og.save({"a": np.array([{}], dtype=object)}, "unused.npz"), TypeError, r"save: 'a' has dtype object"),
        (lambda: og.save([1, 2], "unused.npz"), TypeError, r"save: expected a Module or a dict"),
        (lambda: og.save({1: X()}, "unused.npz"), TypeError, r"save: keys must be strings"),
        (lambda: og.save({"a": X()}, 3), TypeError, r"save: path must be a str or os.PathLike, got int"),
        (lambda: og.save({"a": X()}, "/nonexistent-folder/w.npz"), FileNotFoundError, r"save: the folder /nonexistent-folder does not exist"),
    ],
    "load": [
        (lambda: og.load(3), TypeError, r"load: path must be a str or os.PathLike, got int"),
        (lambda: og.load("/nonexistent-folder/w.npz"), FileNotFoundError, r"load: no such file"),
    ],
}

# public callables whose bad inputs are covered elsewhere or that take no input
NO_ROWS = {
    "get_default_backend": "takes no arguments",
    "get_num_threads": "takes no arguments",
    "current_tape": "takes no arguments",
}


def _public_functions():
    names = [n for n in og.__all__
             if not n.startswith("_") and (inspect.isfunction(getattr(og, n))
                                           or getattr(og, n) is og.Tensor)]
    tensor_module = importlib.import_module("opgraph.tensor")
    methods = {t for t in tensor_module.METHODS.values() if isinstance(t, str)}
    return sorted(set(names) | methods)


def test_every_public_function_has_bad_input_rows():
    missing = [n for n in _public_functions() if n not in BAD_INPUTS and n not in NO_ROWS]
    assert not missing, f"add rows to BAD_INPUTS in tests/test_bad_inputs.py for {missing}"
    assert "backward" in BAD_INPUTS  # Tensor.backward is a method of its own


ROWS = [pytest.param(call, types, pattern, id=f"{name}-{i}")
        for name, rows in BAD_INPUTS.items() for i, (call, types, pattern) in enumerate(rows)]


@pytest.mark.parametrize("call, types, pattern", ROWS)
def test_bad_input_raises_a_clear_error(call, types, pattern):
    types = types if isinstance(types, tuple) else (types,)
    with pytest.raises(Exception) as info:
        call()
    error = info.value
    assert all(isinstance(error, t) for t in types), \
        f"expected {[t.__name__ for t in types]}, got {type(error).__name__}: {error}"
    assert re.search(pattern, str(error)), f"message {str(error)!r} does not match {pattern!r}"
