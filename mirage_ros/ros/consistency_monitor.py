"""``consistency_monitor`` node: live frame vs the memory's rendering -> moving-object flags.

Pairs each live RGB-D frame with the world model's rendering at the same stamp
(``rendered/view``, a ``PredictedView`` carrying pose, intrinsics and validity), runs
:class:`mirage_ros.dynamics.MovingObjectDetector`, and publishes

- ``moving/mask`` (mono8, 255 = moving object), ``moving/memory_mask`` (mono8, 255 = keep out of
  the memory: moving regions and undecided candidates, dilated; the world model's input),
- ``moving/regions`` (``mirage_ros_msgs/MovingRegions``), ``moving/markers`` (MarkerArray),
- ``moving/overlay`` (rgb8 live image tinted by region).

Topics and parameters: docs/nodes.md.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import replace

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, Vector3
from mirage_ros_msgs.msg import MovingRegion, MovingRegions, PredictedView
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, RegionOfInterest
from visualization_msgs.msg import MarkerArray

from mirage_ros.dynamics import DetectorConfig, MovingObjectDetector
from mirage_ros.errors import InvalidInput
from mirage_ros.messages import convert, outputs
from mirage_ros.messages.frames import CONVENTIONS
from mirage_ros.ros import depth_registration
from mirage_ros.ros.node_util import ContainedNode, run_node
from mirage_ros.ros.params import Param, declare
from mirage_ros.ros.pose_source import PoseUnavailable
from mirage_ros.ros.sync import SynchronizedSubscription
from mirage_ros.ros.transport import MAX_IMAGE_PIXELS, TRANSPORTS, camera_transport

_DEFAULTS = DetectorConfig()
PARAMS = [
    Param("image_transport", "raw", "raw Images, or image_transport's <image>/compressed and "
          "<depth>/compressedDepth copies", choices=TRANSPORTS),
    *depth_registration.PARAMS,
    Param("camera_frame_convention", "auto", "frame convention of the image and depth frame_ids (depth "
          "registration): auto = optical if the name contains 'optical'", choices=CONVENTIONS),
    MAX_IMAGE_PIXELS,
    Param("sync_queue_size", 10, "messages queued per input by the image/depth synchroniser", (1, 100)),
    Param("sync_slop", 0.02, "largest stamp difference of live image and depth (s)", (0.0, 1.0)),
    Param("max_pending", 30, "live frames / renderings kept while waiting for their partner (the world "
          "model renders a frame when it reaches the head of its queue, up to ~1 s late on a CPU)", (1, 300)),
    # detector defaults come from DetectorConfig (tuned by the dynamics module), not from here
    Param("work_width", _DEFAULTS.work_width, "detection runs on images subsampled to at most this width",
          (16, 4096)),
    Param("score_low", _DEFAULTS.score_low, "hysteresis: pixels above this join a region", (0.0, 1.0)),
    Param("score_high", _DEFAULTS.score_high, "hysteresis: a region needs a pixel above this", (0.0, 1.0)),
    Param("min_region_fraction", _DEFAULTS.min_region_fraction, "smallest region as a share of the image",
          (0.0, 1.0)),
    Param("max_regions", _DEFAULTS.max_regions, "regions described and tracked per frame", (1, 255)),
    Param("min_memory_coverage", _DEFAULTS.min_memory_coverage, "below this rendered coverage nothing is judged",
          (0.0, 1.0)),
    Param("feedback_dilation", _DEFAULTS.feedback_dilation, "memory mask dilation, working pixels", (0, 50)),
    Param("publish_overlay", True, "publish moving/overlay"),
    Param("overlay_alpha", 0.5, "tint strength of regions in moving/overlay", (0.0, 1.0)),
    Param("marker_lifetime", 0.5, "seconds RViz keeps a region marker", (0.0, 60.0)),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", (0.1, 60.0)),
]


class ConsistencyMonitorNode(ContainedNode):
    """The ``consistency_monitor`` node (see module docstring and docs/nodes.md)."""

    def __init__(self, **kwargs):
        super().__init__("consistency_monitor", **kwargs)
        self.p = p = declare(self, PARAMS)
        self.detector = MovingObjectDetector(DetectorConfig(
            work_width=p.work_width, score_low=p.score_low, score_high=p.score_high,
            min_region_fraction=p.min_region_fraction, max_regions=p.max_regions,
            min_memory_coverage=p.min_memory_coverage, feedback_dilation=p.feedback_dilation))
        self.live: OrderedDict[int, tuple] = OrderedDict()  # stamp -> (image, depth) messages
        self.rendered: OrderedDict[int, PredictedView] = OrderedDict()
        self.last_stamp = -float("inf")
        self.counts = {"frames": 0, "unmatched": 0, "skipped": 0, "moving_regions": 0}
        self.detect_time = deque(maxlen=200)
        self.last_status = "waiting"
        self.transport = t = camera_transport(self, p.image_transport, p.max_image_pixels)
        self.registration = depth_registration.DepthRegistration(
            self, p.depth_registration, depth_registration.depth_info_topic(self, p.depth_camera_info_topic),
            p.camera_frame_convention, self.warn)
        self.sync = SynchronizedSubscription(self, [(t.msg_type, t.image_topic), (t.msg_type, t.depth_topic)],
                                             qos_profile_sensor_data, p.sync_queue_size, p.sync_slop, self._on_live)
        self.create_subscription(PredictedView, "rendered/view", self._on_rendered, 5)
        self.pub_mask = self.create_publisher(Image, "moving/mask", 5)
        self.pub_memory_mask = self.create_publisher(Image, "moving/memory_mask", 5)
        self.pub_regions = self.create_publisher(MovingRegions, "moving/regions", 5)
        self.pub_markers = self.create_publisher(MarkerArray, "moving/markers", 5)
        self.pub_overlay = self.create_publisher(Image, "moving/overlay", 2) if p.publish_overlay else None
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(p.diagnostics_period, self._publish_diagnostics)

    def _on_live(self, image, depth) -> None:
        self._remember(self.live, convert.time_to_ns(image.header.stamp), (image, depth))

    def _on_rendered(self, view: PredictedView) -> None:
        if view.source != PredictedView.SOURCE_LIVE:
            return
        self._remember(self.rendered, convert.time_to_ns(view.header.stamp), view)

    def _remember(self, store: OrderedDict, key: int, item) -> None:
        store[key] = item
        while len(store) > self.p.max_pending:
            store.popitem(last=False)
            self.counts["unmatched"] += 1
        matched = sorted(set(self.live) & set(self.rendered))
        for key in matched:
            self._detect(*self.live.pop(key), self.rendered.pop(key))
        if matched:  # the world model renders in stamp order: nothing before a matched pair gets its partner
            for pending in (self.live, self.rendered):
                for stale in [k for k in pending if k < matched[-1]]:
                    del pending[stale]
                    self.counts["unmatched"] += 1

    def _detect(self, image, depth_msg, view: PredictedView) -> None:
        stamp = convert.time_to_sec(image.header.stamp)
        if stamp < self.last_stamp:
            self.detector.reset()  # bag loop: the world model resets its memory too
        self.last_stamp = stamp
        t0 = time.perf_counter()
        try:
            rgb = self.transport.rgb(image)
            K = replace(convert.intrinsics_from_camera_info(view.camera_info), width=rgb.shape[1], height=rgb.shape[0])
            depth = self._depth(depth_msg, image.header, K)
            rendered_rgb = _fit(convert.rgb_from_image(view.image), rgb.shape[:2])
            rendered_depth = _fit(convert.depth_from_image(view.depth), rgb.shape[:2])
            valid = _fit(convert.image_to_array(view.confidence, ("32FC1",), "confidence") > 0.5, rgb.shape[:2])
            detection = self.detector.update(rgb, depth, K, convert.pose_to_matrix(view.camera_pose), stamp,
                                             rendered_rgb, rendered_depth, valid)
        except InvalidInput as exc:
            self.counts["skipped"] += 1
            self.warn.warn(exc.parameter, f"frame {stamp:.3f} skipped: {exc}")
            return
        except PoseUnavailable as exc:
            self.counts["skipped"] += 1
            self.warn.warn("depth_registration", f"frame {stamp:.3f} skipped: {exc.cause}")
            return
        self.detect_time.append(time.perf_counter() - t0)
        self.counts["frames"] += 1
        self.last_status = detection.status + (f" ({detection.reason})" if detection.reason else "")
        self._publish(detection, image, rgb, view)

    def _depth(self, depth_msg, colour, K) -> np.ndarray:
        """``(H, W) float32`` metres of the live frame in the colour camera ``K`` (``colour``: the
        image's header): depth from a camera of its own re-projected (raises ``PoseUnavailable``
        without its transform)."""
        depth = self.transport.depth(depth_msg)
        K_depth = self.registration.depth_camera(colour.frame_id, K, depth_msg.header.frame_id, depth.shape[::-1])
        if K_depth is None:
            return depth
        if depth.shape != K_depth.shape:
            raise InvalidInput("size", f"depth {depth.shape[1]}x{depth.shape[0]} but its camera_info "
                                       f"{K_depth.width}x{K_depth.height}")
        return self.registration.register(depth, K_depth, depth_msg.header.frame_id, K, colour.frame_id,
                                          convert.time_to_ns(colour.stamp))

    def _publish(self, detection, image, rgb: np.ndarray, view: PredictedView) -> None:
        stamp, frame_id = image.header.stamp, view.header.frame_id
        self.pub_mask.publish(convert.array_to_image(detection.mask, "mono8", stamp, frame_id))
        self.pub_memory_mask.publish(convert.array_to_image(detection.memory_mask, "mono8", stamp, frame_id))
        msg = MovingRegions()
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        msg.world_frame_id = view.world_frame_id
        msg.mask = convert.array_to_image(detection.labels, "mono8", stamp, frame_id)
        msg.regions = [_region_msg(r) for r in detection.regions]
        self.counts["moving_regions"] = sum(r.state == MovingRegion.STATE_MOVING for r in msg.regions)
        self.pub_regions.publish(msg)
        located = [r for r in msg.regions if np.isfinite([r.centroid.x, r.centroid.y, r.centroid.z]).all()]
        self.pub_markers.publish(outputs.region_markers(located, stamp, view.world_frame_id, self.p.marker_lifetime))
        if self.pub_overlay is not None:
            tint = outputs.overlay(rgb, detection.labels, {r.mask_label: r.id for r in detection.regions},
                                   self.p.overlay_alpha)
            self.pub_overlay.publish(convert.array_to_image(tint, "rgb8", stamp, frame_id))

    def _publish_diagnostics(self) -> None:
        values = dict(self.counts, status=self.last_status, sync=self.sync.backend,
                      received_image_depth="/".join(map(str, self.sync.received)), **self.error_counts())
        if self.detect_time:
            values["detect_ms_mean"] = 1e3 * float(np.mean(self.detect_time))
            values["detect_ms_max"] = 1e3 * float(np.max(self.detect_time))
        level, message = (0, "ok") if self.counts["frames"] else (1, "no live frame paired with a rendering yet")
        self.pub_diag.publish(outputs.diagnostic_array(self.get_clock().now().to_msg(), "mirage_ros: consistency_monitor",
                                                       self.get_fully_qualified_name(), level, message, values))


def _fit(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pad (with zeros = no data) or crop ``image`` to ``shape`` ``(H, W)``: the renderer's output is
    cropped to whole latent cells."""
    out = np.zeros(shape + image.shape[2:], image.dtype)
    h, w = min(shape[0], image.shape[0]), min(shape[1], image.shape[1])
    out[:h, :w] = image[:h, :w]
    return out


def _region_msg(region) -> MovingRegion:
    x, y, w, h = (int(v) for v in region.box)
    return MovingRegion(
        id=int(region.id), state=int(region.state), score=float(region.score),
        box=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False),
        mask_label=int(region.mask_label), pixel_count=int(region.pixel_count),
        centroid=Point(**dict(zip("xyz", map(float, region.centroid_world)))),
        velocity=Vector3(**dict(zip("xyz", map(float, region.velocity_world)))),
        velocity_valid=bool(region.velocity_valid))


def main(args=None) -> None:
    run_node(ConsistencyMonitorNode, args)


if __name__ == "__main__":
    main()
