"""Latent spatial memory: lift latents into 3D, fuse by voxel, evict, read out (ONNX graphs).

Torch-free and onnx-free: the graphs in ``graphs/`` are recorded from ``mirage_ros.memory_maths``
(build time, training, tests); what the host and the graphs agree on lives in ``layout``.
"""

from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.latent_memory import LatentMemory
from mirage_ros.memory.storage import MemoryFileError

__all__ = ["LatentMemory", "MemoryConfig", "MemoryFileError", "Readout"]
