"""A tiny trainable robot scene (two braced cells, one actuated) for the control tests."""

TINY_ROBOT = """
[scene]
name = "tiny_robot"

[solver]
kind = "mass_spring"
dim = 2
dt = 0.005
steps = 30
gravity = [0.0, -9.81]
drag = 0.5

[[bodies]]
type = "grid_robot"
cells = [[0, 0, 1], [1, 0, 1]]
cell_size = 0.1
origin = [0.0, 0.01]
stiffness = 500.0
damping = 1.0
mass = 0.1
actuation = 0.2

[[colliders]]
type = "ground"
height = 0.0
stiffness = 2e3
damping = 5.0
friction = 0.6
smoothing = 1e-3
friction_smoothing = 0.05

[controller]
hidden = 8
n_sin = 4
harmonics = 1
commands = ["velocity", "height"]

[training]
iters = 6
batch = 3
lr = 0.01
velocity_range = [0.05, 0.2]
height_range = [0.05, 0.1]
w_height = 0.5
w_effort = 0.01
switch = 0.5
truncate = 10
checkpoint_every = 2
plot_every = 2
eval_velocities = [0.1, 0.2]
eval_steps = 24
eval_every = 3
"""


def write_tiny_robot(directory) -> str:
    path = directory / "tiny_robot.toml"
    path.write_text(TINY_ROBOT)
    return str(path)
