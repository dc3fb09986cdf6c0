"""python -m opgraph.backends.numba_cuda --check-compile LAUNCHED.pkl

Type-checks and lowers, for the real CUDA target, every (kernel key, argument
types) pair pickled in the file (tests/test_cuda_backend.py records them under the
simulator). Lowering to LLVM IR needs no driver, GPU or NVVM, so this catches code
that the simulator, which runs plain Python, accepts but the CUDA compiler rejects.
"""
import pickle
import sys
import types


def check_compile(path, cc=(7, 5)):
    """Lower every (kernel, signature) pickled in `path` for the CUDA target; returns
    the failures, one line each."""
    from numba.cuda import dispatcher
    from numba.cuda.compiler import compile_cuda

    from .kernels import kernel_function
    # device functions ask the current device for its compute capability: answer
    # without a driver, so that this runs on machines without a GPU
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    with open(path, "rb") as f:
        launched = pickle.load(f)
    failures = []
    for key, argtypes in sorted(launched, key=repr):
        try:
            compile_cuda(kernel_function(key), None, argtypes, cc=cc)
        except Exception as e:  # report every kernel, not just the first
            failures.append(f"{key} {argtypes}: {type(e).__name__}: {str(e).splitlines()[0]}")
    return failures


def main(argv):
    from .device import SIM
    if len(argv) != 2 or argv[0] != "--check-compile":
        return "usage: python -m opgraph.backends.numba_cuda --check-compile LAUNCHED.pkl"
    if SIM:
        return "--check-compile needs the real CUDA target: unset NUMBA_ENABLE_CUDASIM"
    problems = check_compile(argv[1])
    print("\n".join(problems) if problems else "all kernels lower for the CUDA target")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
