"""``world_model`` node: RGB-D frames + camera poses in, predicted views out.

Thin ROS shell around :class:`mirage_ros.pipeline.WorldModel`; topics, parameters and frames are
documented in ``docs/nodes.md``. Per frame: synchronise image / depth / camera_info, decode
(:mod:`convert`), find the camera pose at the image stamp (:mod:`pose_source`), render the memory
there for the consistency monitor (``rendered/*``), wait briefly for the monitor's mask
(:mod:`frame_gate`), integrate the frame minus the flagged pixels, then publish predicted views at
the configured horizons (:mod:`prediction_poses`). Bad frames are skipped with a throttled
warning naming the cause; the node keeps running.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from mirage_ros_msgs.msg import PredictedView
from nav_msgs.msg import Path as PathMsg
from rclpy.clock import Clock, ClockType
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.messages import convert, outputs
from mirage_ros.messages.frames import resolve_convention, to_optical
from mirage_ros.pipeline import build_world_model
from mirage_ros.ros import depth_registration
from mirage_ros.ros.frame_gate import FrameGate, PendingFrame
from mirage_ros.ros.node_util import ContainedNode, run_node
from mirage_ros.ros.params import declare
from mirage_ros.ros.path_views import path_view_requests
from mirage_ros.ros.plausibility import Bounds, Timeline, Verdict, stamp_ahead
from mirage_ros.ros.point_colour import LinearColourProbe
from mirage_ros.ros.pose_source import PoseUnavailable, TfPoseSource, TopicPoseSource
from mirage_ros.ros.prediction_poses import extrapolate
from mirage_ros.ros.sync import SynchronizedSubscription
from mirage_ros.ros.transport import camera_transport
from mirage_ros.ros.world_model_params import PARAMS
from mirage_ros.transforms import offset_matrix

LIVE, HORIZON, PATH = PredictedView.SOURCE_LIVE, PredictedView.SOURCE_HORIZON, PredictedView.SOURCE_PATH


def horizon_topic(horizon: float) -> str:
    """``predicted/h0_5`` for 0.5 s: topic prefix of a horizon's plain Image / CameraInfo."""
    return "predicted/h" + f"{horizon:g}".replace(".", "_").replace("-", "m")


class WorldModelNode(ContainedNode):
    """The ``world_model`` node (see module docstring and docs/nodes.md)."""

    def __init__(self, **kwargs):
        super().__init__("world_model", **kwargs)
        self.p = p = declare(self, PARAMS)
        self.bounds = Bounds(tuple(p.depth_range), tuple(p.field_of_view_range), p.max_coordinate)
        self.model = build_world_model(p.provider, p.weights_dir, capacity_points=p.capacity_points, carve=p.carve,
                                 voxel_size=p.voxel_size, voxel_per_footprint=p.voxel_per_footprint,
                                 min_depth=p.depth_range[0], max_depth=p.depth_range[1],
                                 readout_min_count=p.readout_min_count, newest_overlay=p.newest_overlay,
                                 see_through_fill=p.see_through_fill, subcell_placement=p.subcell_placement,
                                 fill_holes=p.fill_depth_holes, cuda_graph=p.cuda_graph, tf32=p.tf32)
        self.colour = LinearColourProbe(self.model.networks.channels)
        nets = self.model.networks
        self.get_logger().info(f"world model ready: provider {nets.provider}, networks "
                               f"{nets.stride}x{nets.channels}x{nets.manifest['network'].get('width', '?')}"
                               f"{', CUDA graphs' if nets.cuda_graph else ''}, "
                               f"stride {self.model.stride}, horizons {p.horizons}, sub-cell placement "
                               f"{'on' if nets.subcell_placement else 'off'}")
        self.pose = self._pose_source()
        self.registration = depth_registration.DepthRegistration(
            self, p.depth_registration, depth_registration.depth_info_topic(self, p.depth_camera_info_topic),
            p.camera_frame_convention, self.warn, self.pose if isinstance(self.pose, TfPoseSource) else None,
            p.use_rectified_projection, self.bounds)
        self.gate = FrameGate(p.mask_hold if p.use_moving_mask else 0.0, p.tf_timeout, p.max_pending_frames)
        self.history: deque[tuple[float, np.ndarray]] = deque(maxlen=64)  # (stamp, T_world_cam)
        self.last_frame: PendingFrame | None = None
        self.timeline = Timeline(p.time_jump_threshold, p.time_jump_frames)
        self.counts = {"frames_in": 0, "integrated": 0, "integrated_with_mask": 0, "skipped": 0,
                       "dropped_pose": 0, "dropped_queue": 0}
        self.received_before = [0, 0, 0]  # sync counters at the last diagnostics tick
        self.live_wanted = True  # someone listens to rendered/* (checked with the diagnostics)
        self.last_prediction = -float("inf")
        self.latency = deque(maxlen=200)  # (seconds image-in -> predictions out)
        self.timing = {"observe": deque(maxlen=200), "predict": deque(maxlen=200)}

        self.transport = t = camera_transport(self, p.image_transport, p.max_image_pixels)
        self.sync = SynchronizedSubscription(
            self, [(t.msg_type, t.image_topic), (t.msg_type, t.depth_topic), (CameraInfo, "camera_info")],
            qos_profile_sensor_data, p.sync_queue_size, p.sync_slop, self._on_frame)
        if p.use_moving_mask:
            self.create_subscription(Image, "moving/memory_mask", self._on_mask, 10)
        self.create_subscription(PathMsg, "path", self._on_path, 1)
        self.pub_live = self.create_publisher(PredictedView, "rendered/view", 5)
        self.pub_rendered = self._part_publishers("rendered")
        self.pub_views = self.create_publisher(PredictedView, "predicted/views", 10)
        self.pub_horizon = {h: self._part_publishers(horizon_topic(h)) for h in p.horizons}
        self.pub_path_views = self.create_publisher(PredictedView, "predicted/path_views", 10)
        self.pub_path_poses = self.create_publisher(PoseArray, "predicted/path_poses", 5)
        self.pub_cloud = self.create_publisher(PointCloud2, "memory/points", 1)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for name, handler in (("reset", self._srv_reset), ("save", self._srv_save), ("load", self._srv_load)):
            self.create_service(Trigger, f"~/{name}", handler)
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # keeps running while a bag is paused
        self.create_timer(p.process_period, self._step, clock=steady)
        self.create_timer(p.diagnostics_period, self._publish_diagnostics, clock=steady)
        if p.pointcloud_period > 0:
            self.create_timer(p.pointcloud_period, self._publish_cloud, clock=steady)

    def _part_publishers(self, prefix: str) -> dict:
        """Publishers of a view's plain parts: ``<prefix>/image``, ``/depth``, ``/camera_info``."""
        return {k: self.create_publisher(t, f"{prefix}/{k}", 5)
                for k, t in (("image", Image), ("depth", Image), ("camera_info", CameraInfo))}

    # ---------------------------------------------------------------- inputs
    def _pose_source(self):
        p = self.p
        if p.pose_source == "tf":
            return TfPoseSource(self, p.world_frame, p.base_frame, p.tf_cache_time, p.tf_max_extrapolation,
                                p.time_jump_threshold)
        return TopicPoseSource(self, "pose", p.pose_source, p.world_frame, offset_matrix(p.camera_offset),
                               p.tf_cache_time, p.tf_max_extrapolation, p.time_jump_threshold)

    def _on_frame(self, image: Image, depth_msg: Image, info: CameraInfo) -> None:
        self.counts["frames_in"] += 1
        stamp = convert.time_to_sec(image.header.stamp)
        try:
            stamp_ahead(stamp, self.get_clock().now().nanoseconds / 1e9, self.p.max_stamp_lead)
            frame = self._decode(image, depth_msg, info)
        except InvalidInput as exc:
            self._skip(exc.parameter, f"frame {stamp:.3f} skipped: {exc}")
            return
        last = self.timeline.last
        verdict = self.timeline.check(stamp)
        if verdict is Verdict.OUT_OF_ORDER:
            self._skip("order", f"frame {stamp:.3f} skipped: out-of-order stamp (not after the last frame {last:.3f})")
            return
        if verdict is Verdict.JUMP_PENDING:
            self._skip("time_jump", f"frame {stamp:.3f} skipped: {last - stamp:.2f} s behind the last frame; the "
                       f"memory is reset if {self.timeline.pending} more frame(s) in order confirm the jump")
            return
        if verdict is Verdict.RESET:
            self.warn.warn("time_jump", f"time jumped back {last - stamp:.2f} s (bag loop?), confirmed by "
                           f"{self.p.time_jump_frames} frame(s): resetting the memory", 0.0)
            self._clear()  # (the pose sources see their own time jump: TF and pose samples go back too)
        for dropped, cause in self.gate.push(frame):
            self.counts["dropped_queue"] += 1
            self.warn.warn("queue", f"frame {dropped.stamp:.3f} dropped: {cause}")
        self._step()

    def _decode(self, image, depth_msg, info: CameraInfo) -> PendingFrame:
        p = self.p
        depth_size = (depth_msg.width, depth_msg.height) if self.transport.raw else None  # compressed: once decoded
        K_depth = self.registration.depth_camera(
            image.header.frame_id, convert.intrinsics_from_camera_info(info, p.use_rectified_projection),
            depth_msg.header.frame_id, depth_size)
        rgb, depth, K = self.transport.decode(image, depth_msg, info, p.use_rectified_projection, K_depth)
        self.bounds.intrinsics(K)
        self.bounds.depth(depth)
        stamp_ns = convert.time_to_ns(image.header.stamp)
        return PendingFrame(stamp_ns, stamp_ns / 1e9, image.header.frame_id, rgb, depth, K, time.monotonic(),
                            depth_camera=None if K_depth is None else (K_depth, depth_msg.header.frame_id))

    def _on_mask(self, msg: Image) -> None:
        try:
            self.gate.add_mask(convert.time_to_ns(msg.header.stamp), convert.mask_from_image(msg))
        except InvalidInput as exc:
            self.warn.warn("mask", f"moving mask ignored: {exc}")
        self._step()

    def _on_path(self, msg: PathMsg) -> None:
        if self.last_frame is None or self._memory_empty():
            self.warn.warn("path", "path received before any frame was integrated: no views predicted")
            return
        if len(msg.poses) > self.p.path_max_poses:
            self.warn.warn("path", f"path of {len(msg.poses)} poses ignored: more than path_max_poses="
                           f"{self.p.path_max_poses}")
            return
        frame = self.last_frame
        try:
            T_world_path = self._world_T_path(msg.header, frame)
            T_base_cam = to_optical(self._base_T_frame(frame), self._convention(frame.frame_id))
            requests = path_view_requests(msg, T_world_path, T_base_cam, frame.stamp, self.p.path_spacing,
                                          self.p.path_max_views, self.p.max_coordinate, PATH)
        except InvalidInput as exc:
            self.warn.warn("path", f"path ignored: {exc}")
            return
        except PoseUnavailable as exc:
            self.warn.warn("path_frame", f"path in {msg.header.frame_id!r} ignored: not in world_frame "
                           f"{self.p.world_frame!r} and {exc.cause}")
            return
        poses = PoseArray()
        poses.header.stamp, poses.header.frame_id = msg.header.stamp, self.p.world_frame
        for request, view in zip(requests, self._views(requests, frame)):
            poses.poses.append(convert.matrix_to_pose(request.T_world_cam))
            self.pub_path_views.publish(view)
        self.pub_path_poses.publish(poses)

    def _world_T_path(self, header, frame: PendingFrame) -> np.ndarray:
        """``T_world_path (4, 4)``: a path in another frame than ``world_frame`` goes through TF at
        its stamp (or the last frame's, when it has none or TF has not reached it yet).

        Raises:
            PoseUnavailable: no TF (a pose / odometry topic gives poses), or no such transform.
        """
        if not header.frame_id or header.frame_id == self.p.world_frame:
            return np.eye(4)
        if not isinstance(self.pose, TfPoseSource):
            raise PoseUnavailable(f"pose_source {self.p.pose_source!r} has no TF to transform it", False)
        return self.pose.lookup_near(self.p.world_frame, header.frame_id, convert.time_to_ns(header.stamp),
                                     frame.stamp_ns)

    def _base_T_frame(self, frame: PendingFrame) -> np.ndarray:
        try:
            return self.pose.base_T_frame(frame.frame_id, frame.stamp_ns)
        except PoseUnavailable as exc:
            self.warn.warn("path_offset", f"camera offset on the robot unknown ({exc.cause}): "
                           "using the camera_offset parameter")
            return offset_matrix(self.p.camera_offset)

    # ---------------------------------------------------------------- processing
    def _convention(self, frame_id: str) -> str:
        return resolve_convention(self.p.camera_frame_convention, frame_id)

    def _pose_of(self, frame: PendingFrame) -> np.ndarray:
        """The frame's ``T_world_cam``; depth from a camera of its own is first re-projected into
        the colour camera (both wait for TF alike)."""
        if frame.depth_camera is not None:
            K_depth, depth_frame = frame.depth_camera
            frame.depth = self.registration.register(frame.depth, K_depth, depth_frame, frame.K, frame.frame_id,
                                                     frame.stamp_ns)
            frame.depth_camera = None
        T_world_cam = to_optical(self.pose.world_T_frame(frame.frame_id, frame.stamp_ns), self._convention(frame.frame_id))
        try:
            return self.bounds.pose(T_world_cam, "camera pose")
        except InvalidInput as exc:
            raise PoseUnavailable(str(exc), False) from exc

    def _step(self) -> None:
        posed, ready, dropped = self.gate.poll(time.monotonic(), self._pose_of)
        for frame, cause in dropped:
            self.counts["dropped_pose"] += 1
            self.warn.warn("pose", f"frame {frame.stamp:.3f} skipped: {cause}")
        # Integrate first, then render the new head: its mask hold must not run while this node
        # is busy integrating (the mask would wait in the executor queue and come "too late").
        # A frame announced and ready at once (no hold) is rendered before it enters the memory.
        for frame, mask in ready:
            if frame in posed:
                posed.remove(frame)
                self._render_live(frame)
            self._integrate(frame, mask)
        for frame in posed:
            self._render_live(frame)
            frame.posed_at = time.monotonic()  # the mask hold starts once the monitor has its input

    def _render_live(self, frame: PendingFrame) -> None:
        if self.live_wanted:
            self._publish_live(frame)

    def _publish_live(self, frame: PendingFrame) -> None:
        request = outputs.ViewRequest(frame.T_world_cam, convert.ns_to_time(frame.stamp_ns), 0.0, LIVE)
        view = self._views([request], frame)[0]
        self.pub_live.publish(view)
        _publish_parts(self.pub_rendered, view)

    def _integrate(self, frame: PendingFrame, mask: np.ndarray | None) -> None:
        if mask is not None and mask.shape != frame.depth.shape:
            self.warn.warn("mask", f"moving mask {mask.shape} does not match the frame {frame.depth.shape}: ignored")
            mask = None
        t0 = time.perf_counter()
        try:
            self.model.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp, dynamic_mask=mask)
        except InvalidInput as exc:
            self._skip("observe", f"frame {frame.stamp:.3f} not integrated: {exc}")
            return
        self.timing["observe"].append(time.perf_counter() - t0)
        if self.p.pointcloud_period > 0:
            self.colour.update(self.model.newest_latent(), frame.rgb, self.model.stride)
        self.counts["integrated"] += 1
        self.counts["integrated_with_mask"] += mask is not None
        self.last_frame = frame
        self.history.append((frame.stamp, frame.T_world_cam))
        if 0.0 <= frame.stamp - self.last_prediction < self.p.prediction_period:
            return  # (a stamp before the last prediction's, after one far ahead: predict, not wait hours)
        self.last_prediction = frame.stamp
        stamps = np.array([s for s, _ in self.history])
        poses = np.stack([T for _, T in self.history])
        requests = [outputs.ViewRequest(extrapolate(stamps, poses, h, self.p.motion_window),
                                        convert.ns_to_time(frame.stamp_ns + round(h * 1e9)), h, HORIZON)
                    for h in self.p.horizons]
        for h, view in zip(self.p.horizons, self._views(requests, frame)):
            self.pub_views.publish(view)
            _publish_parts(self.pub_horizon[h], view)
        self.latency.append(time.monotonic() - frame.arrived)

    def _views(self, requests: list[outputs.ViewRequest], frame: PendingFrame) -> list:
        """PredictedView messages of ``requests``, rendered in one batch (``WorldModel.predict_views``)."""
        if not requests:
            return []
        t0 = time.perf_counter()
        predictions = self.model.predict_views([r.T_world_cam for r in requests], frame.K)
        self.timing["predict"].append((time.perf_counter() - t0) / len(requests))
        views = []
        for request, prediction in zip(requests, predictions):
            h, w = prediction.depth.shape
            K = frame.K if (h, w) == frame.K.shape else replace(frame.K, width=w, height=h)
            views.append(outputs.predicted_view(request, prediction.rgb, prediction.depth, prediction.confidence, K,
                                                self._optical_frame(frame.frame_id), self.p.world_frame))
        return views

    def _optical_frame(self, frame_id: str) -> str:
        return frame_id if self._convention(frame_id) == "optical" else f"{frame_id}_optical"

    def _skip(self, cause: str, text: str) -> None:
        self.counts["skipped"] += 1
        self.warn.warn(cause, text)

    # ---------------------------------------------------------------- outputs
    def _publish_cloud(self) -> None:
        if self.pub_cloud.get_subscription_count() == 0 or self._memory_empty():
            return
        points = self.model.memory.points()
        colours = self.colour.colours(points["latents"])
        self.pub_cloud.publish(outputs.point_cloud(points["positions"], colours, self.get_clock().now().to_msg(),
                                                   self.p.world_frame))

    def _memory_empty(self) -> bool:
        return self.model.memory.stats()["points"] == 0

    def _watch_graph(self) -> None:
        """Skip work nobody needs: the live rendering without subscribers, the mask hold without a
        monitor publishing masks."""
        self.live_wanted = any(pub.get_subscription_count() > 0 for pub in (self.pub_live, *self.pub_rendered.values()))
        monitor = self.p.use_moving_mask and self.count_publishers(self.resolve_topic_name("moving/memory_mask")) > 0
        self.gate.mask_hold = self.p.mask_hold if monitor else 0.0

    def _publish_diagnostics(self) -> None:
        self._watch_graph()
        values = dict(self.counts)
        values["dropped_sync"] = self.sync.dropped
        values["received_image_depth_info"] = "/".join(map(str, self.sync.received))
        level, message = 0, "ok"
        received, before = list(self.sync.received), self.received_before
        self.received_before = received
        if received[0] > before[0] and received[2] == before[2]:
            level, message = 1, "images arrive without camera_info: frames cannot be used"
            self.warn.warn("camera_info", f"frames skipped: images arrive but no camera_info on "
                           f"{self.resolve_topic_name('camera_info')}")
        for name, series in (("latency_ms", self.latency), ("observe_ms", self.timing["observe"]),
                             ("predict_ms", self.timing["predict"])):
            if series:
                values[f"{name}_mean"] = 1e3 * float(np.mean(series))
                values[f"{name}_max"] = 1e3 * float(np.max(series))
        values.update({k if k.endswith("_ms") or k == "provider" else f"memory_{k}": v
                       for k, v in self.model.stats().items()})
        values.update(pose_source=self.pose.backend, sync=self.sync.backend,
                      depth_registered_frames=self.registration.registered_frames, **self.error_counts())
        self.pub_diag.publish(outputs.diagnostic_array(self.get_clock().now().to_msg(), "mirage_ros: world_model",
                                                       self.get_fully_qualified_name(), level, message, values))

    # ---------------------------------------------------------------- services
    def _clear(self) -> None:
        """Empty the memory and forget every frame (the time line stays: see :class:`Timeline`)."""
        self.model.reset()
        self.gate.clear()
        self.sync.clear()
        self.history.clear()
        self.last_frame = None
        self.last_prediction = -float("inf")

    def _srv_reset(self, request, response):
        self._clear()
        self.timeline.reset()
        response.success, response.message = True, "memory cleared"
        return response

    def _srv_save(self, request, response):
        return self._file_op(response, "save")

    def _srv_load(self, request, response):
        response = self._file_op(response, "load")
        if response.success:
            self.gate.clear()
            self.history.clear()
        return response

    def _file_op(self, response, op: str):
        path = Path(self.p.memory_file).expanduser()
        try:
            if op == "save":
                path.parent.mkdir(parents=True, exist_ok=True)
            getattr(self.model, op)(path)
        except (MirageError, OSError) as exc:
            response.success, response.message = False, f"{op} {path} failed: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success, response.message = True, f"{op}d {path}: {self.model.memory.stats()['points']} points"
        return response


def _publish_parts(publishers: dict, view) -> None:
    """Publish a ``PredictedView``'s image, depth and camera_info on :meth:`_part_publishers`."""
    for key, pub in publishers.items():
        pub.publish(getattr(view, key))


def main(args=None) -> None:
    run_node(WorldModelNode, args)  # poses arrive on a side node's thread (pose_source)


if __name__ == "__main__":
    main()
