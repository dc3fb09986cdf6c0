"""Einsum: NumPy's full grammar, lowered to pairwise batched products on the backend.

    opgraph.einsum("bij,bjk->bik", a, b)
    opgraph.einsum(a, [0, 1], b, [1, 2], [0, 2])        # sublist form, any number of labels
    opgraph.einsum_path("ij,jk,kl->il", a, b, c)         # -> (path, info)

One package for einsum, tropical einsum (ops/tropical.py) and the tropical solver
(opgraph.tropical), in the order an einsum runs:

1. parse (parse.py): every operand gets a tuple of labels (``...`` expanded to fresh
   labels, right-aligned as in NumPy broadcasting), the output gets its labels, and
   every label its size. A size-1 dimension whose label has size n elsewhere broadcasts.
2. path (path.py): the order of the pairwise contractions: numpy's greedy, the optimal
   subset DP, tree simulated annealing (treesa.py), elimination orders, or a given list
   of pairs; and what a path costs.
3. plan (plan.py): one prepare step per operand (squeeze the broadcast size-1 dims, take
   the diagonal of repeated labels, reduce the labels that appear nowhere else) and one
   pairwise step per pair of the path: transpose both sides to (batch, free,
   contracted) / (batch, contracted, free), reshape to 3-D, one batched product,
   reshape back; finally a permutation into the output's label order. Cached.
4. lower (lower.py): the steps as backend kernel calls, for the sum-product semiring
   and for a Semiring (⊕-reductions and tropical_matmul, keeping the winners).
5. ops (ops.py): the Einsum op and the einsum / einsum_path functions.

Backward (the swap rule) reverses the recorded steps, reusing the forward's
intermediates: a pairwise step C = A·B gives dA = einsum(dC, B -> A) and
dB = einsum(A, dC -> B), each again one pairwise step; a prepare step is undone by
broadcasting over the reduced labels, placing the gradient on the diagonal of the
repeated labels (zeros elsewhere), and un-squeezing the broadcast dims (which sums
them back to size 1).
"""
from .parse import Spec, _LETTERS, parse, split_args  # noqa: F401
from .path import (METHODS, PathInfo, PathTooLarge, _flops, _numpy_path, contraction_plan,  # noqa: F401
                   find_path, greedy_path, optimal_path, simulate_path)
from .plan import PairStep, Plan, UnaryStep, _PLANS, get_plan  # noqa: F401
from . import lower  # noqa: F401
from .lower import run_pair, run_unary, to_3d, unary_adjoint  # noqa: F401
from .ops import Einsum, EinsumPair, EinsumUnary, EinsumUnaryAdjoint, einsum, einsum_path  # noqa: F401
