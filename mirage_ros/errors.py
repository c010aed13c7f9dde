"""Error types shared by every module: bad input names the parameter that is wrong."""


class MirageError(Exception):
    """Base class of every error raised on purpose by mirage_ros."""


class InvalidInput(MirageError, ValueError):
    """An argument, message or file field is out of its domain.

    Args:
        parameter: name of the offending parameter (``"depth"``, ``"K.fx"``, ``"--rate"``).
        reason: what is wrong with it, for a person to read.
    """

    def __init__(self, parameter: str, reason: str):
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"{parameter}: {reason}")
