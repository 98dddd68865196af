"""Test session set-up: the whole suite runs the engine in float64 on the CPU.

Gradient checks need float64 (in float32, round-off swamps any finite-difference step),
and one precision for the whole session avoids re-initialising Taichi between tests.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from diffsim.core import backend  # noqa: E402

backend.init(arch="cpu", precision="float64", threads=2)
