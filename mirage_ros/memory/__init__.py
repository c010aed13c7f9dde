"""Latent spatial memory: lift latents into 3D, fuse by voxel, evict, read out (ONNX graphs).

Torch-free at runtime; ``torch_reference`` (tests, training) and ``onnx_graphs`` (build script)
are the only modules that import torch or onnx, and nothing here imports them.
"""

from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.latent_memory import LatentMemory
from mirage_ros.memory.storage import MemoryFileError

__all__ = ["LatentMemory", "MemoryConfig", "MemoryFileError", "Readout"]
