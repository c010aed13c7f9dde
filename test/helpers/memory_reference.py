"""The memory's maths run eagerly in torch (``memory_maths`` with ``TorchOps``) on host arrays, and
the comparison of an ONNX memory state with it."""

import numpy as np
import torch

from mirage_ros.memory.frame_inputs import latent_rays
from mirage_ros.memory_maths.carve import carve
from mirage_ros.memory_maths.torch_ops import TorchOps
from mirage_ros.memory_maths.update import update


def torch_state(host):
    return {n: torch.from_numpy(np.array(v)) for n, v in host.items()}


def reference_update(state, cfg, stamp, depth, dynamic, latent, K_latent, T):
    """The update in torch on host arrays, with the params vector ``LatentMemory.insert`` builds
    (``stamp``: seconds since the memory's first insert)."""
    params = torch.from_numpy(cfg.update_params(stamp, K_latent))
    return update(TorchOps(), torch.from_numpy(depth), torch.from_numpy(dynamic), torch.from_numpy(latent),
                  torch.from_numpy(latent_rays(K_latent)), torch.from_numpy(T.astype(np.float32)),
                  params, state, cfg.stride)


def reference_carve(state, depth, dynamic, projection, params, slot_ids, stride):
    """The carve step in torch on ``state`` (with ``carve_stats``): the carved tensors by name."""
    trash_id = torch.tensor([state["keys"].shape[0] - 1])
    return carve(TorchOps(), depth, dynamic, projection, params, slot_ids, trash_id, state, state["carve_stats"],
                 stride)


def assert_state_matches(ort_state, state):
    """Keys and stats exactly, the live slots' other fields to 1e-4."""
    np.testing.assert_array_equal(ort_state["keys"], state["keys"].numpy())
    np.testing.assert_array_equal(ort_state["stats"], state["stats"].numpy())
    live = ort_state["keys"] >= 0
    for name in ("positions", "latents", "weights", "last_seen", "counts"):
        np.testing.assert_allclose(ort_state[name][live].astype(np.float64),
                                   state[name].numpy()[live].astype(np.float64), atol=1e-4, err_msg=name)
