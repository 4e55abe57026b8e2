"""An exception as one readable line, for the command line and for log lines that must stay short."""


def one_line(error: BaseException) -> str:
    """An OSError as "reason: file"; anything else as its first line, or its type's name."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error).splitlines()[0] if str(error) else type(error).__name__
