"""Latent spatial memory: lift latents into 3D, fuse by voxel, evict, read out (ONNX graphs).

Torch-free and onnx-free at runtime; ``torch_reference`` (tests, training), ``onnx_graphs`` and
``carve`` (graph builders) are the only modules that import torch or onnx, and nothing the runtime
loads imports them: what the host and the graphs agree on lives in ``layout``.
"""

from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.latent_memory import LatentMemory
from mirage_ros.memory.storage import MemoryFileError

__all__ = ["LatentMemory", "MemoryConfig", "MemoryFileError", "Readout"]
