"""Parameters of the ``world_model`` node (``docs/nodes.md`` lists them; ``config/world_model.yaml``
holds every one with its default)."""

from mirage_ros.memory.config import MemoryConfig
from mirage_ros.messages.frames import CONVENTIONS
from mirage_ros.ros import depth_registration
from mirage_ros.ros.params import Param
from mirage_ros.ros.plausibility import FIELD_OF_VIEW_DEG
from mirage_ros.ros.transport import MAX_IMAGE_PIXELS, TRANSPORTS
from mirage_ros.runtime.networks import SUBCELL_PLACEMENT

PARAMS = [
    Param("provider", "auto", "ONNX Runtime execution provider", choices=("auto", "cuda", "cpu")),
    Param("weights_dir", "", "networks: 'standard' (or '') and 'light' (for CPU robots: a quarter of the "
          "renderer's work) are shipped; else a folder with manifest.json + ONNX files"),
    Param("cuda_graph", True, "CUDA: run every stage as a captured CUDA graph (H100, 640x480: a view in 1.8 ms "
          "instead of 4-11 ms)"),
    Param("tf32", True, "CUDA: the networks' convolutions in TF32 (images within one 8-bit level of float32)"),
    Param("world_frame", "map", "fixed frame of the memory and of predicted poses (REP-105)"),
    Param("base_frame", "base_link", "robot base frame; planned path poses are poses of this frame"),
    Param("camera_frame_convention", "auto",
          "frame convention of the image frame_id: auto = optical if the name contains 'optical'",
          choices=CONVENTIONS),
    Param("pose_source", "tf", "where camera poses come from", choices=("tf", "pose", "odometry")),
    Param("camera_offset", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
          "T_base_camera [x y z roll pitch yaw] (m, rad): pose topics, and paths when TF lacks it"),
    Param("tf_timeout", 0.3, "seconds a frame waits for its camera pose before it is skipped", (0.0, 10.0)),
    Param("tf_cache_time", 10.0, "seconds of pose history kept", (1.0, 300.0)),
    Param("tf_max_extrapolation", 0.05, "seconds a TF / pose lookup may fall past the samples, holding the "
          "nearest (tf2_ros and the built-in buffer alike)",
          (0.0, 1.0)),
    Param("use_rectified_projection", False, "take intrinsics from CameraInfo.p instead of .k"),
    Param("image_transport", "raw", "raw Images, or image_transport's <image>/compressed and "
          "<depth>/compressedDepth copies", choices=TRANSPORTS),
    *depth_registration.PARAMS,
    Param("sync_queue_size", 10, "messages queued per input by the time synchroniser", (1, 100)),
    Param("sync_slop", 0.02, "largest stamp difference of image, depth and camera_info (s)", (0.0, 1.0)),
    Param("use_moving_mask", True, "keep pixels flagged by the consistency monitor out of memory"),
    Param("mask_hold", 0.15, "seconds a frame waits for its moving mask before integrating anyway",
          (0.0, 2.0)),
    Param("max_pending_frames", 2, "frames waiting behind the one being integrated; beyond, the oldest is dropped",
          (1, 64)),
    Param("horizons", [0.5, 1.0, 2.0], "seconds ahead to predict views for", (0.0, 30.0)),
    Param("prediction_period", 0.0,
          "least seconds (of stamps) between two sets of horizon views; 0 = every frame", (0.0, 60.0)),
    Param("motion_window", 0.5, "seconds of pose history the motion is extrapolated from", (0.05, 10.0)),
    Param("path_spacing", 0.5, "metres between predicted views along a planned path", (0.0, 100.0)),
    Param("path_max_views", 8, "most views predicted along one path", (1, 64)),
    Param("path_max_poses", 20_000, "longer paths are ignored with a warning (bounds the work one message asks)",
          (1, 10_000_000)),
    Param("max_coordinate", 100_000.0, "positions (path poses, camera poses) farther than this (m) from the "
          "world origin on any axis are implausible: skipped with a warning", (1.0, 1e9)),
    Param("pointcloud_period", 2.0, "seconds between memory point clouds (0 = off)", (0.0, 3600.0)),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", (0.1, 60.0)),
    MAX_IMAGE_PIXELS,
    Param("depth_range", [MemoryConfig.min_depth, MemoryConfig.max_depth],
          "[min, max] metres: depth readings outside are not used; a frame with none inside is skipped", (0.0, 1e4)),
    Param("field_of_view_range", list(FIELD_OF_VIEW_DEG), "[min, max] degrees: a CameraInfo whose horizontal or "
          "vertical field of view lies outside (fx = 1e-30 or 1e30) is implausible: its frames are skipped",
          (0.0, 180.0)),
    Param("max_stamp_lead", 60.0, "frames stamped more than this (s) after the node's clock are skipped (one "
          "stamp hours ahead must not move the time line)", (0.0, 1e9)),
    Param("time_jump_threshold", 1.0, "a stamp this far (s) behind the last one starts a jump back (bag loop); "
          "less is skipped as out of order", (0.0, 3600.0)),
    Param("time_jump_frames", 3, "frames in order on the new time line that confirm a jump back before the memory "
          "is reset (until then they are skipped): one outlier stamp never resets it", (1, 100)),
    Param("memory_file", "~/.ros/mirage_memory.npz", "file of the ~/save and ~/load services"),
    Param("capacity_points", MemoryConfig.capacity_points,
          "hard cap on points the latent memory holds (64 B each at C 16)", (16, 100_000_000)),
    Param("voxel_per_footprint", MemoryConfig.voxel_per_footprint,
          "a memory voxel is at most this fraction of its latent cell's footprint (stride * depth / f), so the "
          "memory keeps every cell the camera resolves at any range and image size (<= 1: one frame read out at "
          "its own pose fills >= 95 % of its cells); 0 = fixed voxels of voxel_size", (0.0, 100.0)),
    Param("voxel_size", MemoryConfig.voxel_size,
          "finest memory voxel edge (m); with voxel_per_footprint 0 the only one", (1e-4, 10.0)),
    Param("readout_min_count", MemoryConfig.readout_min_count,
          "predicted views draw only points seen in at least this many frames (1 = all): one sighting "
          "is most often a person walking through or depth noise", (1, 1000)),
    Param("carve", MemoryConfig.carve, "free-space carving: remove stored points the live depth sees through "
          "(about 1 ms per frame on an H100, 5 ms of CPU at 320x240)"),
    Param("newest_overlay", True, "prefer the newest frame's own latents where it sees the target surface"),
    Param("fill_depth_holes", True, "the newest frame's pixels without a depth reading join its overlay at the "
          "frame's far depth (exact under rotation; never stored in the memory), so views are drawn from them "
          "instead of guessed"),
    Param("see_through_fill", False, "cells that show a stored point through a gap in a nearer surface take "
          "that surface's point (for static scenes: it also spreads people the detector missed)"),
    Param("subcell_placement", "auto", "draw each rendered cell where its memory point projects: auto = as "
          "the networks were trained (their manifest; the shipped ones: disabled), enabled = sharper views of a "
          "static scene (with people walking, points the moving-object detector missed show more)",
          choices=tuple(SUBCELL_PLACEMENT)),
    Param("process_period", 0.01, "seconds between polls of frames waiting for pose or mask",
          (0.001, 1.0)),
]
