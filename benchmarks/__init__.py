"""Speed and memory benchmarks of refgen's autodiff engine side by side with PyTorch.

Run ``python -m benchmarks.run`` (``--help`` for options). Results are recorded in
``benchmarks/RESULTS.md``. This package imports neither numpy nor torch at import
time, so the runner can fix the thread settings before either library loads.
"""
