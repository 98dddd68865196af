"""Torch bridge tests run the engine in float64 on the CPU (gradcheck needs float64).

tests/conftest.py will initialise the backend for the whole session; until it does, this
does (``backend.init`` is idempotent for identical settings).
"""

from diffsim.core import backend

backend.init(arch="cpu", precision="float64")
