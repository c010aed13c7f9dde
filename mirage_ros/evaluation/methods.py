"""The world models compared by evaluation, behind one small interface (``scoring.Method``).

- ``latent_memory``: :class:`mirage_ros.pipeline.WorldModel`, exactly what the nodes run (the
  fused memory's read-out overlaid with the newest frame's latents where that frame sees them).
- ``rgb_point_cloud``: :class:`mirage_ros.memory.baselines.RGBPointCloudMemory`: every valid pixel
  kept as a coloured point, rasterised at the target, gaps filled with the nearest covered pixel,
  re-encoded, rendered by the same renderer.
- ``last_frame_warp``: :class:`mirage_ros.memory.baselines.LastFrameWarp`: the last frame's
  latents warped to the target, rendered by the same renderer (ours without memory).
- ``rgb_frame_warp``: the point cloud of the last frame only (``keep_frames=1``): its pixels
  forward-warped to the target, gaps filled, re-encoded, rendered (the point cloud without memory).
- ``rgb_point_cloud_direct``: a reference without networks: the point cloud's gap-filled picture
  shown as it is (what the stored colours alone give).
- ``rgb_frame_warp_direct``: the free baseline a planner has without any world model: the newest
  frame's pixels forward-warped by depth and pose to the target, holes filled with the nearest
  warped pixel, no network.

The first four are two questions crossed: latent or RGB, memory or only the last frame. All share one
set of networks (the shipped ONNX encoder and renderer) and the provider. Update times include
each method's own encoding: the latent methods encode every observed frame, the RGB ones encode at
prediction time (their rasterised picture).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics, upsample_cells

METHOD_NAMES = ("latent_memory", "rgb_point_cloud", "last_frame_warp", "rgb_frame_warp", "rgb_point_cloud_direct",
                "rgb_frame_warp_direct")


def render_view(networks, readout, K: Intrinsics, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Render a latent-resolution read-out to ``(rgb (H, W, 3) uint8, valid (H, W) bool)`` at ``K.shape``
    (the ragged edge past whole latent cells is filled with the last rendered row / column)."""
    return networks.render(readout, K.shape), upsample_cells(readout.valid, stride, K.shape)


class LatentMemoryMethod:
    """Our world model (``WorldModel``); also renders the live view for the moving-object detector."""

    name = "latent_memory"

    def __init__(self, world_model):
        self.model = world_model
        self.provider = world_model.networks.provider
        config = world_model.memory_config
        self.description = ("WorldModel: encoder latents lifted by depth into the voxel-fused latent memory, "
                            "read out (newest frame overlaid: "
                            f"{'on' if world_model.newest_overlay else 'off'}, its depth holes filled: "
                            f"{'on' if world_model.fill_holes else 'off'}, see-through fill: "
                            f"{'on' if world_model.see_through_fill else 'off'}) and rendered "
                            f"(stride {world_model.stride}, capacity {config.capacity_points} points, "
                            f"voxel {config.voxel_size} m, max weight {config.max_weight:g}, "
                            f"points drawn once seen {config.readout_min_count} times)")

    def observe(self, frame, dynamic_mask) -> None:
        self.model.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp, dynamic_mask=dynamic_mask)

    def predict(self, T_world_cam, K):
        prediction = self.model.predict(T_world_cam, K)
        return prediction.rgb, prediction.valid

    def predict_live(self, T_world_cam, K):
        """``(rgb, depth, valid)`` at full size: the rendering the consistency monitor compares with."""
        prediction = self.model.predict(T_world_cam, K)
        return prediction.rgb, prediction.depth, prediction.valid

    def memory_bytes(self) -> int:
        return int(self.model.memory.stats()["bytes"])


class PointCloudMethod:
    """RGB point-cloud memory: rasterise, fill gaps, re-encode, render (the round trip Mirage removes)."""

    name = "rgb_point_cloud"
    keep_frames: int | None = None
    description = ("every valid pixel as a coloured world point (15 B each); view = rasterise, fill gaps with the "
                   "nearest covered pixel, re-encode, render")

    def __init__(self, networks, provider: str):
        from mirage_ros.memory.baselines import RGBPointCloudMemory

        self.networks = networks
        self.provider = networks.provider
        self.cloud = RGBPointCloudMemory(provider=provider, keep_frames=self.keep_frames)

    def observe(self, frame, dynamic_mask) -> None:
        self.cloud.insert(frame.rgb, frame.depth, frame.K, frame.T_world_cam, dynamic_mask=dynamic_mask)

    def predict(self, T_world_cam, K):
        stride = self.networks.stride
        readout = self.cloud.read_out(T_world_cam, K, self.networks.encode, stride)
        return render_view(self.networks, readout, K, stride)

    def memory_bytes(self) -> int:
        return int(self.cloud.bytes)


class RGBFrameWarpMethod(PointCloudMethod):
    """The last frame's pixels warped to the target (z-buffered at full resolution), gaps filled,
    re-encoded, rendered: the point cloud without memory."""

    name = "rgb_frame_warp"
    keep_frames = 1
    description = ("no memory: the last frame's valid pixels as coloured points, rasterised at the target "
                   "(forward warp, z-buffer), gaps filled with the nearest covered pixel, re-encoded, rendered")


class DirectMethod:
    """A cloud's gap-filled picture shown as it is: no encoder, no renderer. Run beside the method
    whose cloud it shows (``rgb_point_cloud`` or ``rgb_frame_warp``) it reads that method's cloud
    (one cloud in memory, one rasterisation per view; update and rasterise times counted there)."""

    def __init__(self, source_cls: type[PointCloudMethod], networks, provider: str,
                 shares: PointCloudMethod | None = None):
        self.name = f"{source_cls.name}_direct"
        self.provider = networks.provider
        self.source = shares or source_cls(networks, provider)
        self._observes = shares is None
        what = ("every valid pixel" if source_cls.keep_frames is None
                else "the newest frame's valid pixels (forward warp by depth and pose)")
        self.description = (f"reference, not a learned model: {what} as coloured world points; view = rasterise, "
                            "fill gaps with the nearest covered pixel, shown as is (no re-encode, no renderer)"
                            + (f"; the {source_cls.name}'s own cloud, its times counted there" if shares else ""))

    def observe(self, frame, dynamic_mask) -> None:
        if self._observes:
            self.source.observe(frame, dynamic_mask)

    def predict(self, T_world_cam, K):
        rgb, covered, _ = self.source.cloud.filled(T_world_cam, K)
        return rgb, covered

    def memory_bytes(self) -> int:
        return self.source.memory_bytes()


class LastFrameMethod:
    """The last frame's latents warped to the target (no memory)."""

    name = "last_frame_warp"

    def __init__(self, networks, memory_config, provider: str):
        from mirage_ros.memory.last_frame import LastFrameWarp

        self.networks = networks
        self.provider = networks.provider
        self.warp = LastFrameWarp(memory_config, provider)
        self.description = "no memory: the last frame's latents lifted and warped to the target, rendered"

    def observe(self, frame, dynamic_mask) -> None:
        latent = self.networks.encode(frame.rgb)
        self.warp.insert(latent, frame.depth, frame.K, frame.T_world_cam, frame.stamp, dynamic_mask)

    def predict(self, T_world_cam, K):
        return render_view(self.networks, self.warp.read_out(T_world_cam, K), K, self.networks.stride)

    def memory_bytes(self) -> int:
        return self.warp.stats()["bytes"]


def build_methods(names: tuple[str, ...], provider: str = "auto", world_model=None, weights_dir=None,
                  capacity_points: int | None = None, subcell_placement: bool | None = None) -> list:
    """The methods named (``latent_memory`` first: it also renders for the detector).

    Args:
        names: subset of :data:`METHOD_NAMES`; ``latent_memory`` is always included.
        provider: ONNX Runtime provider for networks and memories.
        world_model: a ready :class:`mirage_ros.pipeline.WorldModel` (default: a new one).
        weights_dir: folder with ``manifest.json`` + ONNX files for a new world model (default:
            the weights shipped in the package).
        capacity_points: memory capacity of a new world model (default: ``MemoryConfig``'s).
        subcell_placement: ``Networks.load``'s, for a new world model (default: as trained).

    Raises:
        InvalidInput: ``"--methods"`` with an unknown name.
    """
    unknown = [n for n in names if n not in METHOD_NAMES]
    if unknown:
        raise InvalidInput("--methods", f"unknown {unknown}; choose from {METHOD_NAMES}")
    if world_model is None:
        from mirage_ros.pipeline import WorldModel, memory_config_for
        from mirage_ros.runtime.networks import Networks

        networks = Networks.load(weights_dir, provider=provider, subcell_placement=subcell_placement)
        config = memory_config_for(networks)
        if capacity_points is not None:
            try:
                config = replace(config, capacity_points=capacity_points)
            except InvalidInput as exc:
                raise InvalidInput("--capacity-points", exc.reason) from exc
        world_model = WorldModel(networks, config, provider=provider)
    methods = [LatentMemoryMethod(world_model)]
    if "rgb_point_cloud" in names:
        methods.append(PointCloudMethod(world_model.networks, provider))
    if "last_frame_warp" in names:
        methods.append(LastFrameMethod(world_model.networks, world_model.memory_config, provider))
    if "rgb_frame_warp" in names:
        methods.append(RGBFrameWarpMethod(world_model.networks, provider))
    for source_cls in (PointCloudMethod, RGBFrameWarpMethod):
        if f"{source_cls.name}_direct" in names:
            cloud = next((m for m in methods if m.name == source_cls.name), None)
            methods.append(DirectMethod(source_cls, world_model.networks, provider, shares=cloud))
    return methods
