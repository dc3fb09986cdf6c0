"""The operation catalog: one module per op family, one class per op."""
from .elementwise import (Add, Sub, Mul, Div, FloorDivide, Remainder, Fmod, Pow, Neg, Exp, Log,
                          LogWithEpsilon, Sin, Cos, Sqrt, Rsqrt, Abs, ReLU, Sigmoid, Tanh, SiLU, Where, AsType, ToBackend,
                          Maximum, Minimum, Clamp, ClampTensor, Clone)
from .linalg import MatMul, BatchMatMul
from .reduce import SumDim, MeanDim, MaxDim, MinDim, AMax, AMin, Var, Std, LogSumExp
from .shape import (Reshape, Transpose, BroadcastTo, Index, IndexPutAdd, SetItem, Cat, Chunk, Split,
                    sum_to_shape)
from .indexing import Gather, ScatterAdd, Scatter, Embedding, EmbeddingBackward
from .nn_ops import Softmax, LogSoftmax, CrossEntropy
from .conv import Im2Col, Col2Im, Conv2D, MaxPool2D
from .einsum import Einsum, EinsumPair, EinsumUnary, EinsumUnaryAdjoint
from .tropical import TropicalEinsum
from .activation import GELU, GELUGrad, LeakyReLU, ELU, Softplus
from .normalization import LayerNorm, BatchNorm
from .loss import BinaryCrossEntropy, BinaryCrossEntropyWithLogits
from .recurrent import LSTMCell, GRUCell
