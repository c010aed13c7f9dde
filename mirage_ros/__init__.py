"""mirage_ros: a latent spatial memory world model for ROS 2 robots."""

__version__ = "0.1.0"
