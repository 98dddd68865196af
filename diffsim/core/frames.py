"""Generic kernels that move one frame of a windowed field ``f[slot, b, i, ...]``.

Every solver keeps its hot state in fields indexed ``[slot, b, i]`` (elements scalar,
vector or matrix). These kernels copy a slot to another slot and one slot to or from a
host array, so checkpoints and boundary reads never copy the whole window. Each field
passed as a template compiles its own kernel once (a handful per solver).
"""


import numpy as np
import taichi as ti


def element_shape(f) -> tuple[int, ...]:
    """Element shape of a Taichi field: () scalar, (n,) vector, (n, m) matrix."""
    if hasattr(f, "n"):
        return (f.n,) if f.ndim == 1 else (f.n, f.m)
    return ()


@ti.kernel
def _copy_slot(f: ti.template(), src: ti.i32, dst: ti.i32):
    for b, i in ti.ndrange(f.shape[1], f.shape[2]):
        f[dst, b, i] = f[src, b, i]


@ti.kernel
def _slot_to_array(f: ti.template(), slot: ti.i32, out: ti.types.ndarray(), rank: ti.template()):
    for b, i in ti.ndrange(f.shape[1], f.shape[2]):
        if ti.static(rank == 0):
            out[b, i] = f[slot, b, i]
        elif ti.static(rank == 1):
            for k in ti.static(range(f.n)):
                out[b, i, k] = f[slot, b, i][k]
        else:
            for k, l in ti.static(ti.ndrange(f.n, f.m)):
                out[b, i, k, l] = f[slot, b, i][k, l]


@ti.kernel
def _array_to_slot(f: ti.template(), slot: ti.i32, src: ti.types.ndarray(), rank: ti.template()):
    for b, i in ti.ndrange(f.shape[1], f.shape[2]):
        if ti.static(rank == 0):
            f[slot, b, i] = src[b, i]
        elif ti.static(rank == 1):
            for k in ti.static(range(f.n)):
                f[slot, b, i][k] = src[b, i, k]
        else:
            for k, l in ti.static(ti.ndrange(f.n, f.m)):
                f[slot, b, i][k, l] = src[b, i, k, l]


def copy_slot(f, src: int, dst: int) -> None:
    _copy_slot(f, src, dst)


def read_slot(f, slot: int, dtype) -> np.ndarray:
    """Host copy of ``f[slot]``, shape ``[B, N, *element]``."""
    out = np.empty(tuple(f.shape[1:3]) + element_shape(f), dtype=dtype)
    _slot_to_array(f, slot, out, len(element_shape(f)))
    return out


def write_slot(f, slot: int, value: np.ndarray, dtype) -> None:
    """Write host ``value`` ``[B, N, *element]`` into ``f[slot]``."""
    shape = tuple(f.shape[1:3]) + element_shape(f)
    value = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=dtype), shape))
    _array_to_slot(f, slot, value, len(element_shape(f)))
