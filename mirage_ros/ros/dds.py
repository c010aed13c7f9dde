"""A Fast DDS profile for processes that publish camera-sized messages on one host.

Fast DDS (the default RMW) moves same-host messages through a shared-memory segment of 512 KiB
per participant. One 320x240 RGB-D frame (rgb8 + 32FC1) is already 530 KiB and a PredictedView
three times that: with best-effort (sensor data) QoS, samples that do not fit are silently
dropped, on every topic of the publishing process. Measured here: 2 of 5 depth images and camera
infos lost at 400x300 with the default profile, none with this one.

:func:`large_message_env` writes a profile with a 32 MiB segment (UDP restricted to 127.0.0.1
when ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) and returns the environment variable that
selects it. The demo, the benchmark, the tests and the launch files apply it to the processes they
start, unless ``FASTDDS_DEFAULT_PROFILES_FILE`` is already set or another RMW is selected.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SEGMENT_BYTES = 32 * 1024 * 1024

_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- written by mirage_ros.ros.dds: larger shared-memory segment for camera-sized messages -->
<profiles xmlns="http://www.eprosima.com">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>mirage_shm</transport_id>
      <type>SHM</type>
      <segment_size>{segment}</segment_size>
    </transport_descriptor>
    <transport_descriptor>
      <transport_id>mirage_udp</transport_id>
      <type>UDPv4</type>{allow}
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="mirage_large_messages" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>mirage_shm</transport_id>
        <transport_id>mirage_udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def large_message_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``{"FASTDDS_DEFAULT_PROFILES_FILE": path}`` to add to a child's environment, or ``{}``.

    ``{}`` when the user chose a profile already or the RMW is not Fast DDS.
    """
    environ = os.environ if environ is None else environ
    if environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        return {}
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return {}
    localhost = environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST"
    allow = "<interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>" if localhost else ""
    text = _PROFILE.format(segment=SEGMENT_BYTES, allow=allow)
    path = Path(tempfile.gettempdir()) / f"mirage_ros_fastdds_{'local' if localhost else 'any'}.xml"
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(path)}
