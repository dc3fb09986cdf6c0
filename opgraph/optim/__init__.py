"""Optimizers, as torch.optim: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop
and Adagrad, with torch's defaults and options; learning-rate schedules in
opgraph.optim.lr_scheduler.

    opt = opgraph.optim.Adam(model.parameters(), lr=1e-3)
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    # sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs); sched.step() per epoch

Hyper-parameters are checked when the optimizer is built (a NaN, a negative value or a
non-number is an error naming the optimizer) and read as Python numbers, so NumPy scalars
never turn float32 parameters into float64. `step()` updates each parameter's `.data` with its backend's kernels
(`p.backend.binary(...)`), never through NumPy, so it runs unchanged on every
backend (device arrays included) and records nothing on the tape.
"""
from . import lr_scheduler
from .optimizer import Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
