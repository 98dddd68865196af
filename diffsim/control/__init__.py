"""Controllers, losses and training loops.

* :class:`ControllerSineMLP`: the in-loop neural controller (Taichi, one launch per step);
  :mod:`.torch_policy` holds its torch mirror (imported on demand: it needs torch);
* :mod:`.losses`: velocity, height, heading and effort losses on recorded rollouts;
* :class:`Trainer` / :func:`train`: ``diffsim train`` (batched, truncated, checkpointed);
* :func:`evaluate`: ``diffsim eval`` (tracking table, GIF, commanded-vs-achieved plot);
* :mod:`.scene`: the ``[controller]`` and ``[training]`` scene sections.
"""

from .controller import ControllerSineMLP
from .evaluate import evaluate
from .optim import Adam, clip_by_global_norm
from .train import Trainer, train

__all__ = ["ControllerSineMLP", "Adam", "clip_by_global_norm", "Trainer", "train", "evaluate"]
