"""consistency_monitor as a real process: live frame + rendering in, moving masks and regions out.

The live frame arrives as raw Images, or as image_transport's compressed copies (PNG colour,
compressedDepth) with ``image_transport: compressed``.
"""

import numpy as np
import pytest
from mirage_ros_msgs.msg import MovingRegions, PredictedView
from sensor_msgs.msg import CompressedImage, Image

from mirage_ros.geometry import Intrinsics
from mirage_ros.messages import convert, outputs
from mirage_ros.ros.dds import large_message_env
from mirage_ros.ros.recorder import Recorder
from mirage_ros.ros.transport import frame_messages

K = Intrinsics(80.0, 80.0, 63.5, 47.5, 128, 96)
BOX = (slice(30, 70), slice(40, 80))  # rows, cols of an object that is not in the memory


def scene(stamp: float, with_box: bool):
    rng = np.random.default_rng(int(stamp * 10))
    rgb = np.full((96, 128, 3), 120, np.uint8) + rng.integers(0, 10, (96, 128, 3), dtype=np.uint8)
    depth = np.full((96, 128), 3.0, np.float32)
    if with_box:
        rgb[BOX] = [200, 40, 40]
        depth[BOX] = 1.5
    return rgb, depth


@pytest.mark.usefixtures("interfaces")
@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_monitor_flags_what_the_memory_lacks(ros_process, transport):
    monitor = ros_process(module="mirage_ros.ros.consistency_monitor", env=large_message_env(),
                          args=["--ros-args", "-p", f"image_transport:={transport}"])
    with Recorder("test_monitor") as rec:
        masks = rec.record("moving/memory_mask", Image)
        moving = rec.record("moving/mask", Image)
        regions = rec.record("moving/regions", MovingRegions)
        overlays = rec.record("moving/overlay", Image)
        if transport == "raw":
            pub_image, pub_depth = rec.publisher("image", Image), rec.publisher("depth", Image)
        else:
            pub_image = rec.publisher("image/compressed", CompressedImage)
            pub_depth = rec.publisher("depth/compressedDepth", CompressedImage)
        pub_view = rec.publisher("rendered/view", PredictedView)
        assert rec.wait_for_subscribers(pub_view, timeout=20), monitor.output()
        rec.wait_for_subscribers(pub_depth)
        sent = []
        for k in range(12):  # until 5 frames came back (a best-effort camera message may be lost)
            if len(masks) >= 5:
                break
            stamp = convert.sec_to_time(100.0 + 0.1 * k)
            rgb, depth = scene(100.0 + 0.1 * k, with_box=True)
            mem_rgb, mem_depth = scene(100.0 + 0.1 * k, with_box=False)
            request = outputs.ViewRequest(np.eye(4), stamp, 0.0, PredictedView.SOURCE_LIVE)
            view = outputs.predicted_view(request, mem_rgb, mem_depth, np.ones((96, 128), np.float32), K, "cam", "map")
            pub_view.publish(view)  # rendering first: the monitor must wait for the live frame
            rec.spin_for(0.02)
            image, depth_msg = frame_messages(rgb, depth, transport, stamp, "cam")
            pub_image.publish(image)
            pub_depth.publish(depth_msg)
            sent.append(100.0 + 0.1 * k)
            rec.spin_for(0.1)
        assert rec.spin_until(lambda: len(masks) >= 5 and len(regions) >= 5, timeout=20), monitor.output()
    stamps = [convert.time_to_sec(m.msg.header.stamp) for m in masks]
    assert stamps == sorted(stamps) and set(np.round(stamps, 6)) <= set(np.round(sent, 6))
    mask = convert.mask_from_image(masks[-1].msg)
    assert mask.shape == (96, 128) and masks[-1].msg.header.frame_id == "cam"
    assert mask[BOX].mean() > 0.9, "the object absent from memory must be kept out of it"
    outside = mask.copy()
    outside[30 - 8:70 + 8, 40 - 8:80 + 8] = False  # feedback dilation around the box
    assert outside.mean() < 0.01
    assert len(moving) >= 5 and len(overlays) >= 5
    last = regions[-1].msg
    assert last.world_frame_id == "map" and len(last.regions) == 1
    box = last.regions[0].box
    assert (box.x_offset, box.y_offset, box.width, box.height) == (40, 30, 40, 40)
    labels = convert.image_to_array(last.mask)
    assert np.all(labels[BOX] == last.regions[0].mask_label)
