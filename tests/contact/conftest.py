"""Session-wide contact scenes: one zoo solver per dimension (compiling is the slow part)."""

import pytest

from ._zoo import build_zoo


@pytest.fixture(scope="session")
def zoo2():
    return build_zoo(2)


@pytest.fixture(scope="session")
def zoo3():
    return build_zoo(3)


@pytest.fixture(scope="session")
def plane_lab():
    """``(model, solver)``: one particle over a ground plane, 48 environments, window 200."""
    from ._zoo import build_plane_lab

    return build_plane_lab(48, 200)
