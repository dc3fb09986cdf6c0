"""Optimizers, as torch.optim: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

    opt = opgraph.optim.Adam(model.parameters(), lr=1e-3)
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()

`step()` updates each parameter's `.data` with its backend's kernels
(`p.backend.binary(...)`), never through NumPy, so it runs unchanged on every
backend (device arrays included) and records nothing on the tape.
"""
from .optimizer import Optimizer, SGD, Adam, AdamW

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
