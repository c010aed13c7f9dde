"""Moving-object detection: live frame vs memory rendering, regions, moving vs new static.

Entry point for the consistency monitor node::

    from mirage_ros.dynamics import MovingObjectDetector, DetectorConfig
    detector = MovingObjectDetector(DetectorConfig())
    detection = detector.update(live_rgb, live_depth, K, T_world_cam, stamp,
                                rendered_rgb, rendered_depth, rendered_valid)
    world_model.observe(..., dynamic_mask=detection.memory_mask)
"""

from mirage_ros.dynamics.baseline import FrameDifferencing
from mirage_ros.dynamics.config import DetectorConfig
from mirage_ros.dynamics.detector import Detection, MovingObjectDetector, Region
from mirage_ros.dynamics.tracking import (
    STATE_MOVING,
    STATE_NAMES,
    STATE_NEW_STATIC,
    STATE_UNKNOWN,
    TrackingConfig,
)

__all__ = [
    "STATE_MOVING",
    "STATE_NAMES",
    "STATE_NEW_STATIC",
    "STATE_UNKNOWN",
    "Detection",
    "DetectorConfig",
    "FrameDifferencing",
    "MovingObjectDetector",
    "Region",
    "TrackingConfig",
]
