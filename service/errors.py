"""Domain errors that callers must see as such (service/error_mapping.py turns them into statuses)."""


class InvalidArgument(ValueError):
    """Bad input: `field` names the request field, `reason` is an UPPER_SNAKE code."""

    def __init__(self, field: str, message: str, reason: str = "INVALID_FIELD") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
