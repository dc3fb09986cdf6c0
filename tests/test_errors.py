"""Bad input gets a clear exception naming the op and the shapes / dtypes."""
import numpy as np
import pytest

import opgraph as og


def t(*shape, dtype=np.float32):
    return og.tensor(np.ones(shape), dtype=dtype)


def test_matmul_shapes_not_aligned():
    with pytest.raises(ValueError, match=r"MatMul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        og.matmul(t(2, 3), t(4, 5))
    with pytest.raises(ValueError, match=r"BatchMatMul: shapes \(2, 2, 3\) and \(2, 4, 5\)"):
        og.matmul(t(2, 2, 3), t(2, 4, 5))
    with pytest.raises(ValueError, match=r"BatchMatMul \(batch dims\): shapes \(2,\) and \(3,\)"):
        og.matmul(t(2, 2, 3), t(3, 3, 5))


def test_not_broadcastable():
    with pytest.raises(ValueError, match=r"Add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        t(2, 3) + t(4)
    with pytest.raises(ValueError, match=r"Mul: shapes"):
        t(2, 3) * np.ones((3, 2))
    with pytest.raises(ValueError, match=r"Where: shapes"):
        og.where(np.ones(5) > 0, t(2, 3), t(3))


def test_integer_tensor_requires_grad():
    with pytest.raises(TypeError, match=r"int64"):
        og.tensor([1, 2, 3], requires_grad=True)


def test_gather_index_out_of_range():
    with pytest.raises(ValueError, match=r"Gather: index out of range: values span \[0, 5\].*\[0, 2\]"):
        og.gather(t(2, 3), 1, og.tensor([[0, 5], [1, 1]]))
    with pytest.raises(ValueError, match=r"Gather: index of shape \(2,\) does not fit"):
        og.gather(t(2, 3), 1, og.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"Gather: indices must be integers"):
        og.gather(t(2, 3), 1, og.tensor([[0.0]]))


def test_embedding_and_cross_entropy_out_of_range():
    with pytest.raises(ValueError, match=r"Embedding: indices out of range"):
        og.embedding(t(4, 2), og.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"CrossEntropy: targets out of range"):
        og.cross_entropy(t(2, 3), og.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"CrossEntropy: targets must have shape \(2,\)"):
        og.cross_entropy(t(2, 3), og.tensor([0, 1, 2]))


def test_mixing_backends():
    class OtherBackend(type(og.get_default_backend())):
        name = "other"

    a = og.tensor([1.0, 2.0])
    b = og.Tensor(np.ones(2, dtype=np.float32), backend=OtherBackend())
    with pytest.raises(ValueError, match=r"Add: inputs live on different backends \(numpy and other\)"):
        a + b


def test_backward_non_scalar_without_grad():
    x = og.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"non-scalar tensor of shape \(2,\)"):
        (x * 2).backward()


def test_reshape_and_transpose_errors():
    with pytest.raises(ValueError, match=r"Reshape: cannot reshape \(2, 3\) \(size 6\) into \(4, -1\)"):
        t(2, 3).reshape(4, -1)
    with pytest.raises(ValueError, match=r"only one dimension can be -1"):
        t(2, 3).reshape(-1, -1)
    with pytest.raises(ValueError, match=r"Transpose: axes \(0, 0\) are not a permutation"):
        og.transpose(t(2, 3), (0, 0))
    with pytest.raises(ValueError, match=r"SumDim: dim 2 is out of range for a tensor with 2 dims"):
        t(2, 3).sum(2)


def test_index_errors():
    with pytest.raises(IndexError, match=r"Index: key \[5\] is invalid for a tensor of shape \(2, 3\)"):
        t(2, 3)[5]


def test_cat_and_conv_and_pool_errors():
    with pytest.raises(ValueError, match=r"Cat: shapes \(2, 3\), \(3, 3\) differ outside dim 1"):
        og.cat([t(2, 3), t(3, 3)], 1)
    with pytest.raises(ValueError, match=r"Conv2D: input has 3 channels but weight \(4, 2, 3, 3\)"):
        og.conv2d(t(1, 3, 5, 5), t(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"Conv2D: expects input \(N, C, H, W\)"):
        og.conv2d(t(3, 5, 5), t(4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"Conv2D: kernel 5x5 does not fit input 3x3"):
        og.conv2d(t(1, 1, 3, 3), t(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"MaxPool2D: kernel 4 is larger than the input 3x3"):
        og.max_pool2d(t(1, 1, 3, 3), 4)


def test_pow_with_a_bad_exponent():
    with pytest.raises(TypeError, match=r"Pow: exponent must be a number or a tensor"):
        og.pow(t(2), "2")


@pytest.mark.parametrize("call,match", [
    (lambda: og.zeros(2, 3, 4).transpose(0, 5), r"Transpose: dim 5 is out of range for a tensor with 3 dims"),
    (lambda: og.zeros(2, 3).squeeze(5), r"Squeeze: dim 5 is out of range"),
    (lambda: og.zeros(2, 3).unsqueeze(7), r"Unsqueeze: dim 7 is out of range for a tensor of shape \(2, 3\)"),
    (lambda: og.zeros(2, 3).flatten(3), r"Flatten: dim 3 is out of range"),
    (lambda: og.zeros(2, 3).sum(2), r"SumDim: dim 2 is out of range"),
    (lambda: og.matmul(og.zeros(3), og.zeros(4)), r"MatMul: shapes \(3,\) and \(4,\) are not aligned"),
])
def test_bad_dims_and_vector_shapes_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_tensor_arguments():
    with pytest.raises(TypeError, match="SumDim: dim must be an int, got float"):
        og.zeros(2, 3).sum(1.5)
    with pytest.raises(TypeError, match="grad: input 0 is a float, not a Tensor"):
        og.grad((og.ones(1, requires_grad=True) * 2).sum(), [3.0])
    with pytest.raises(ValueError, match="tensor: the nested sequences must form a rectangular"):
        og.tensor([[1, 2], [3]])
    # plain numbers on both sides make tensors on the default backend
    assert og.add(1.0, 2.0).item() == 3.0
    np.testing.assert_array_equal(og.where(og.tensor([True, False]), 1.0, 2.0).numpy(), [1.0, 2.0])
