"""Process logging for `effort serve`: one line per record on stderr, as text or JSON (EFFORT_LOG_*)."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Libraries that say too much at INFO for a server log (Feast: every registry refresh); they
# log WARNING and above unless the level is DEBUG.
QUIET_LOGGERS = ("feast",)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, process, message, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "process": record.process,
            "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", log_format: Literal["text", "json"] = "text") -> None:
    """Replaces the root logger's handlers with one stderr handler in the chosen format.

    Python warnings become log records too, so that a JSON log stays one object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG
                                         else max(logging.WARNING, root.level))
    logging.captureWarnings(True)
