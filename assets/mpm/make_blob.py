"""Generate blob.obj: a closed, low-poly, bunny-like blob for MPM mesh sampling tests.

An icosahedron subdivided twice (320 triangles, outward-facing) whose vertices are pushed
radially by a few smooth bumps (a body, a head and two ears), then scaled to fit the unit
cube [-0.5, 0.5]^3. Run ``python assets/mpm/make_blob.py`` to rewrite the file.
"""

from pathlib import Path

import numpy as np


def icosphere(subdivisions: int):
    t = (1 + 5 ** 0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
         [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [np.asarray(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(subdivisions):
        cache, faces = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = faces
    return np.asarray(verts), np.asarray(f, np.int64)


def blob():
    v, f = icosphere(2)
    bumps = [([0.0, -0.3, 0.0], 0.25, 0.35),   # heavy lower body
             ([0.6, 0.5, 0.0], 0.35, 0.30),    # head
             ([0.5, 1.0, 0.25], 0.25, 0.45),   # ears
             ([0.5, 1.0, -0.25], 0.25, 0.45)]
    r = np.ones(len(v))
    for centre, amp, width in bumps:
        c = np.asarray(centre) / np.linalg.norm(centre)
        r += amp * np.exp(-np.sum((v - c) ** 2, axis=1) / width)
    v = v * r[:, None]
    v -= 0.5 * (v.min(0) + v.max(0))
    return v / np.ptp(v, axis=0).max(), f


if __name__ == "__main__":
    import meshio

    verts, faces = blob()
    meshio.write(Path(__file__).with_name("blob.obj"), meshio.Mesh(verts, [("triangle", faces)]))
