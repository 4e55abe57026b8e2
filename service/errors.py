"""Domain errors that callers must see as such (service/error_mapping.py turns them into statuses)."""


class InvalidArgument(ValueError):
    """Bad input: `field` names the request field, `reason` is an UPPER_SNAKE code."""

    def __init__(self, field: str, message: str, reason: str = "INVALID_FIELD") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class Unavailable(RuntimeError):
    """A dependency could not do the work in time; retrying later may succeed."""

    def __init__(self, message: str, reason: str = "STORE_UNAVAILABLE",
                 retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
