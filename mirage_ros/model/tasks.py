"""The two training tasks behind one ``forward`` (DistributedDataParallel needs a single call).

- **reconstruction**: natural image -> encoder -> latent with random holes -> renderer -> image.
- **memory** (``sim``, ``real``): context frames of a simulated or recorded path -> encoder -> lifted to world points ->
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
    """Encoder + renderer; ``forward(batches)`` returns ``(total_loss, parts)``.

    Args:
        cfg: network sizes.
        loss: the image loss used by every task.
        memory_readers: task name -> callable ``(batch, latents) -> (latent, valid, depth, offset)``
            turning encoded context frames into the target's read-out latent
            (``model.memory_data.MemoryTargets.read_memory``), one per memory task (``sim``, ``real``).
    """

    def __init__(self, cfg: NetworkConfig, loss: ImageLoss, memory_readers: dict | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.renderer = Renderer(cfg)
        self.loss = loss
        self.memory_readers = dict(memory_readers or {})

    def reconstruct(self, rgb: torch.Tensor, valid: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)`` through the latent; ``valid``/``depth`` ``(B, 1, h, w)``."""
        return self.renderer(self.encoder(rgb), valid, depth)

    def render_memory(self, batch: dict, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted ``(B, 3, H, W)`` target view and its ``(B, 1, h, w)`` validity from a batch of
        memory task ``task``."""
        ctx = batch["context_rgb"]  # (B, K, 3, H, W)
        b, k = ctx.shape[:2]
        latents = self.encoder(ctx.flatten(0, 1))
        latents = latents.view(b, k, *latents.shape[1:])
        latent, valid, depth, offset = self.memory_readers[task](batch, latents)
        rgb = self.renderer(latent, valid, depth)
        return (place_subcell_torch(rgb, offset) if self.cfg.subcell_placement else rgb), valid

    def forward(self, batches: dict[str, dict]):
        """``batches``: ``natural`` (reconstruction: ``rgb``, ``valid``, ``depth``) and memory tasks
        by name (``model.memory_data`` batches); each carries its loss ``weight``."""
        total = 0.0
        parts = {}
        for name, batch in batches.items():
            if name == "natural":
                pred = self.reconstruct(batch["rgb"], batch["valid"], batch["depth"])
                target = batch["rgb"]
            else:
                pred, _ = self.render_memory(batch, name)
                target = batch["target_rgb"]
            parts[name] = self.loss(pred, target)
            total = total + parts[name] * batch["weight"]
        return total, parts
