"""The two training tasks behind one ``forward`` (DistributedDataParallel needs a single call).

- **reconstruction**: natural image -> encoder -> latent with random holes -> renderer -> image.
- **memory**: context frames of a simulated path -> encoder -> lifted to world points ->
  ``read_out_torch`` at the target pose (the same projection + z-buffer as the runtime memory)
  -> renderer (-> sub-cell placement, ``place_subcell_torch``, when the network config asks for
  it; the runtime then does the same) -> the real frame at that pose.
"""

from __future__ import annotations

import torch
from torch import nn

from mirage_ros.memory_maths.subcell import place_subcell_torch
from mirage_ros.model.losses import ImageLoss
from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer


class WorldModelNets(nn.Module):
    """Encoder + renderer; ``forward(natural, sim)`` returns ``(total_loss, parts)``.

    Args:
        cfg: network sizes.
        loss: the image loss used by both tasks.
        memory_readout: callable ``(batch, latents) -> (latent, valid, depth, offset)`` turning encoded
            context frames into the target's warped latent (``model.sim_data.memory_readout``);
            None when the memory task is off.
    """

    def __init__(self, cfg: NetworkConfig, loss: ImageLoss, memory_readout=None):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.renderer = Renderer(cfg)
        self.loss = loss
        self.memory_readout = memory_readout

    def reconstruct(self, rgb: torch.Tensor, valid: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)`` through the latent; ``valid``/``depth`` ``(B, 1, h, w)``."""
        return self.renderer(self.encoder(rgb), valid, depth)

    def render_memory(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted ``(B, 3, H, W)`` target view and its ``(B, 1, h, w)`` validity from a sim batch."""
        ctx = batch["context_rgb"]  # (B, K, 3, H, W)
        b, k = ctx.shape[:2]
        latents = self.encoder(ctx.flatten(0, 1))
        latents = latents.view(b, k, *latents.shape[1:])
        latent, valid, depth, offset = self.memory_readout(batch, latents)
        rgb = self.renderer(latent, valid, depth)
        return (place_subcell_torch(rgb, offset) if self.cfg.subcell_placement else rgb), valid

    def forward(self, natural: dict | None, sim: dict | None):
        total = 0.0
        parts = {}
        if natural is not None:
            pred = self.reconstruct(natural["rgb"], natural["valid"], natural["depth"])
            parts["natural"] = self.loss(pred, natural["rgb"])
            total = total + parts["natural"] * natural["weight"]
        if sim is not None:
            pred, _ = self.render_memory(sim)
            parts["sim"] = self.loss(pred, sim["target_rgb"])
            total = total + parts["sim"] * sim["weight"]
        return total, parts
