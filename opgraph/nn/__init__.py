"""Neural-network building blocks, as torch.nn.

    import opgraph
    from opgraph import nn

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()

A Module holds Parameters (leaf Tensors with requires_grad=True) and other
Modules; `parameters()` finds them all. Parameters are created on the default
backend (`opgraph.set_default_backend`) or the `backend=` you pass, and
`module.to(backend)` moves them in place (optimizers keep working).
Initialisation follows PyTorch: weights kaiming-uniform with a=sqrt(5) (i.e.
U(-1/sqrt(fan_in), 1/sqrt(fan_in))), biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
Embedding N(0, 1). Call `nn.manual_seed(seed)` for reproducible initial weights.
"""
from . import functional, init
from .init import manual_seed
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization_all
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss_all
from .rnn import *  # noqa: F401,F403
from .rnn import __all__ as _rnn_all
from . import utils

__all__ = (list(_modules_all) + list(_normalization_all) + list(_loss_all) + list(_rnn_all)
           + ["functional", "utils"])
