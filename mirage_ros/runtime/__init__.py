"""ONNX Runtime side of mirage_ros: sessions (provider choice, IOBinding) and the shipped networks.

Torch-free. ``Networks`` is imported on first use so that ``import mirage_ros.runtime`` stays cheap.
"""

from mirage_ros.runtime.session import (
    PROVIDERS,
    BoundSession,
    ProviderUnavailable,
    create_session,
    resolve_provider,
)

__all__ = ["PROVIDERS", "BoundSession", "Networks", "ProviderUnavailable", "create_session",
           "resolve_provider"]


def __getattr__(name):
    if name == "Networks":
        from mirage_ros.runtime.networks import Networks

        return Networks
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
