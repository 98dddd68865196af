"""Solver families a scene can name, one module each.

Every module in this package registers a :class:`~diffsim.scene.solvers.SolverKind` with
:func:`~diffsim.scene.solvers.register_solver` when imported; the registry imports them
all on first use. To add a family (``mpm``, ``fem``), add a module here.
"""
