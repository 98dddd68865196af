"""Meshes: generators, meshio loading of the bundled assets, clear errors, surfaces, builder checks."""

from pathlib import Path

import numpy as np
import pytest

from diffsim.solvers.fem import FEMBuilder, elasticity_grads, load_mesh, mesh, set_elasticity

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "fem"


def outward_volume(m):
    """Volume from the boundary by the divergence theorem: positive iff facets point outward."""
    x, s = m.vertices, m.surface()
    if m.dim == 3:
        n = np.cross(x[s[:, 1]] - x[s[:, 0]], x[s[:, 2]] - x[s[:, 0]]) / 2
        return float(np.sum(n * x[s].mean(axis=1)) / 3)
    t = x[s[:, 1]] - x[s[:, 0]]
    return float(np.sum(np.c_[t[:, 1], -t[:, 0]] * x[s].mean(axis=1)) / 2)


@pytest.mark.parametrize("m, volume, elements", [
    (mesh.box((3, 2, 2), (0.3, 0.2, 0.1)), 0.006, 72),
    (mesh.beam(1.0, 0.1, 0.05, (10, 2, 1)), 0.005, 120),
    (mesh.rectangle((4, 3), (0.4, 0.3)), 0.12, 24),
])
def test_generators(m, volume, elements):
    assert m.element_count == elements
    assert np.all(m.volumes() > 0)
    assert m.volumes().sum() == pytest.approx(volume)
    assert outward_volume(m) == pytest.approx(volume)   # closed, outward-oriented boundary


@pytest.mark.parametrize("name, dim, elements", [
    ("beam_10x2x2.msh", 3, 240), ("cube_3.vtk", 3, 162), ("cube_3.vtu", 3, 162),
    ("box_2x1x1.mesh", 3, 12), ("plate_8x4.vtu", 2, 64)])
def test_bundled_meshes_load(name, dim, elements):
    m = load_mesh(ASSETS / name, dim=dim)
    assert m.dim == dim and m.element_count == elements
    assert np.all(m.volumes() > 0)
    assert outward_volume(m) == pytest.approx(m.volumes().sum())


def test_mesh_without_tetrahedra_is_refused_by_name(tmp_path):
    import meshio

    m = mesh.box((1, 1, 1))
    path = tmp_path / "shell.vtu"
    meshio.write(path, meshio.Mesh(m.vertices, [("triangle", m.surface())]))
    with pytest.raises(ValueError, match=r"shell\.vtu.*no tetrahedra.*triangle"):
        load_mesh(path)


def test_inverted_elements_are_refused_by_name(tmp_path):
    m = mesh.box((2, 1, 1))
    m.elements[3, :2] = m.elements[3, 1::-1]
    path = tmp_path / "twisted.msh"
    m.save(path)
    with pytest.raises(ValueError, match=r"twisted\.msh: 1 of 12 elements are inverted.*element 3"):
        load_mesh(path)


def test_unused_vertices_are_dropped(tmp_path):
    import meshio

    m = mesh.box((1, 1, 1))
    pts = np.vstack([[9.0, 9.0, 9.0], m.vertices])   # a geometry point no element uses
    path = tmp_path / "orphan.vtk"
    meshio.write(path, meshio.Mesh(pts, [("tetra", m.elements + 1)]))
    loaded = load_mesh(path)
    assert loaded.vertex_count == m.vertex_count
    np.testing.assert_allclose(loaded.vertices, m.vertices)


def test_surface_export_round_trip(tmp_path):
    from diffsim.io.export import read_mesh, write_vtu

    m = load_mesh(ASSETS / "cube_3.vtu")
    path = write_vtu(tmp_path / "surface.vtu", m.vertices, {"triangle": m.surface()})
    pts, cells, _ = read_mesh(path)[:3]
    assert len(cells["triangle"]) == 2 * 9 * 6   # two triangles per boundary square


def test_builder_checks():
    m = mesh.box((1, 1, 1))
    with pytest.raises(ValueError, match="2D mesh cannot go into a 3D builder"):
        FEMBuilder(3).add_mesh(mesh.rectangle())
    with pytest.raises(KeyError, match="unknown material"):
        FEMBuilder(3, material="rubberish")
    b = FEMBuilder(3)
    b.add_mesh(m)
    b.pin(0, axes=[0])
    with pytest.raises(ValueError, match="already pinned"):
        b.add_kinematic(0, axes=[0])
    b.add_kinematic(0, axes=[1])                      # other axes of a pinned vertex may be driven
    with pytest.raises(ValueError, match="already kinematic"):
        b.pin(0, axes=[1])
    with pytest.raises(ValueError, match="non-zero"):
        b.add_muscle([0], [0.0, 0.0, 0.0], 1e3)
    with pytest.raises(ValueError, match="out of range"):
        b.add_load([99], [1.0, 0.0, 0.0])


def test_elasticity_chain_rule():
    b = FEMBuilder(3)
    b.add_mesh(mesh.box((1, 1, 1)), youngs_modulus=1e5, poisson_ratio=0.3)
    model = b.finalize(1)
    set_elasticity(model, 2e5, 0.25)
    mu, lam = model.get("element_mu")[0, 0], model.get("element_lam")[0, 0]
    assert mu == pytest.approx(2e5 / 2.5) and lam == pytest.approx(2e5 * 0.25 / (1.25 * 0.5))
    # L = 3 mu + 5 lam: dL/dE and dL/dnu from the chain rule against central differences
    model.param("element_mu").field.grad.fill(3.0)
    model.param("element_lam").field.grad.fill(5.0)
    gE, gnu = elasticity_grads(model)

    def L(E, nu):
        from diffsim.materials import lame
        mu_, lam_ = lame(E, nu)
        return 3 * mu_ + 5 * lam_

    h = 1e-6
    assert gE[0, 0] == pytest.approx((L(2e5 * (1 + h), 0.25) - L(2e5 * (1 - h), 0.25)) / (4e5 * h), rel=1e-6)
    assert gnu[0, 0] == pytest.approx((L(2e5, 0.25 + h) - L(2e5, 0.25 - h)) / (2 * h), rel=1e-6)
