"""Regenerate the small FEM meshes in this folder with diffsim's generators and meshio.

    python assets/fem/make_meshes.py

* beam_10x2x2.msh   a 0.5 x 0.05 x 0.05 m beam, 10 x 2 x 2 cells, 240 tets (gmsh 2.2 ASCII)
* cube_3.vtk        a 0.1 m cube, 3 x 3 x 3 cells, 162 tets (legacy VTK)
* cube_3.vtu        the same cube as a VTK unstructured grid (XML)
* box_2x1x1.mesh    a 0.2 x 0.1 x 0.1 m box, 2 x 1 x 1 cells, 12 tets (Medit)
* plate_8x4.vtu     a 0.2 x 0.1 m rectangle, 8 x 4 squares, 64 triangles (2D, z = 0)
"""

from pathlib import Path

from diffsim.solvers.fem import mesh

HERE = Path(__file__).resolve().parent


def main():
    mesh.beam(0.5, 0.05, 0.05, (10, 2, 2)).save(HERE / "beam_10x2x2.msh")
    cube = mesh.box((3, 3, 3), (0.1, 0.1, 0.1))
    cube.save(HERE / "cube_3.vtk")
    cube.save(HERE / "cube_3.vtu")
    mesh.box((2, 1, 1), (0.2, 0.1, 0.1)).save(HERE / "box_2x1x1.mesh")
    mesh.rectangle((8, 4), (0.2, 0.1)).save(HERE / "plate_8x4.vtu")


if __name__ == "__main__":
    main()
