"""Rigid-body poses <-> particles: initial states from tracked poses, poses from particles.

Trackers report a rigid body's pose (position and orientation quaternion) and its linear
and angular velocity; a deformable simulator wants particle positions and velocities.
For body-frame points ``r_i`` (e.g. the corners of a near-rigid mass-spring cube):

    x_i = p + R r_i,      v_i = v + omega_world x (R r_i),      omega_world = R omega_body

(angular velocity in the body frame, as Drake and the ContactNets data report it). The
other way, the pose of a simulated near-rigid body is the least-squares rigid fit of its
particles to the body points (Kabsch, Acta Cryst. A32, 1976; with the SVD sign fix that
excludes reflections), and the orientation error between two poses is the angle of the
relative rotation, ``acos((tr(Ra^T Rb) - 1) / 2)``.

Quaternions are ``(w, x, y, z)``, unit, Hamilton convention (Drake's floating-body order).
"""

import numpy as np


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` of unit quaternions ``[..., 4]`` (w, x, y, z)."""
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def rigid_particles(quat, position, omega_body, velocity, body_points):
    """Particle positions and velocities ``([..., N, 3], [..., N, 3])`` of a rigid body.

    Args:
        quat: ``[..., 4]`` orientation (w, x, y, z); position: ``[..., 3]`` [m].
        omega_body: ``[..., 3]`` angular velocity in the body frame [rad/s].
        velocity: ``[..., 3]`` linear velocity of the reference point [m/s].
        body_points: ``[N, 3]`` particle positions in the body frame [m].
    """
    R = quat_to_matrix(quat)
    arm = np.einsum("...ij,nj->...ni", R, np.asarray(body_points, float))
    omega = np.einsum("...ij,...j->...i", R, np.asarray(omega_body, float))
    x = np.asarray(position, float)[..., None, :] + arm
    v = np.asarray(velocity, float)[..., None, :] + np.cross(omega[..., None, :], arm)
    return x, v


def kabsch(body_points, x, weights=None):
    """Best rigid fit ``x ~ t + R r``: ``(R [..., 3, 3], t [..., 3])`` for particles
    ``x`` ``[..., N, 3]`` of body points ``r`` ``[N, 3]`` (optionally weighted)."""
    r = np.asarray(body_points, float)
    x = np.asarray(x, float)
    w = np.ones(len(r)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    rc = r - w @ r
    xc_mean = np.einsum("n,...nd->...d", w, x)
    xc = x - xc_mean[..., None, :]
    H = np.einsum("n,ni,...nj->...ij", w, rc, xc)          # sum w r x^T
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("...ji,...kj->...ik", Vt, U)))
    D = np.zeros(H.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = d
    R = np.einsum("...ji,...jk,...lk->...il", Vt, D, U)     # V D U^T
    t = xc_mean - np.einsum("...ij,j->...i", R, w @ r)
    return R, t


def rotation_angle(Ra, Rb) -> np.ndarray:
    """Angle [rad] of the rotation between orientations ``Ra`` and ``Rb`` ``[..., 3, 3]``."""
    c = (np.einsum("...ij,...ij->...", Ra, Rb) - 1.0) / 2.0
    return np.arccos(np.clip(c, -1.0, 1.0))
