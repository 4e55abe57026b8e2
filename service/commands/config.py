"""`effort config`: every setting's effective value and where it came from, secrets masked."""

import argparse
import json
import os
from dataclasses import asdict
from typing import Any

from service.settings import Settings, setting_variables, variable_sources
from service.settings_report import KNOWN_NON_SETTINGS, mask, source_of, unknown_variables


def run(args: argparse.Namespace) -> None:
    """Prints EFFORT_NAME=value  (source) per setting, the other EFFORT_* variables `effort` reads
    that are set, then the unknown ones; or all of it as one JSON object with --json."""
    values = Settings().model_dump(mode="json")
    sources = variable_sources()
    variables = setting_variables()
    settings = {name: {"value": mask(name, values[field]), "source": source_of(name, sources)}
                for field, name in variables.items()}
    others = {name: mask(name, os.environ[name]) for name in KNOWN_NON_SETTINGS
              if name in os.environ}
    unknown = unknown_variables(sources, variables.values())
    if args.json:
        print(json.dumps({"settings": settings, "not_settings": others,
                          "unknown": [asdict(u) for u in unknown]}, indent=2))
        return
    for name, setting in settings.items():
        print(f"{name}={_text(setting['value'])}  ({setting['source']})")
    for name, value in others.items():
        print(f"{name}={value}  (environment; not a setting: {KNOWN_NON_SETTINGS[name]})")
    for variable in unknown:
        print(f"unknown, ignored: {variable.describe()}")


def _text(value: Any) -> str:
    """A value as it would be written in the environment: true/false, nothing for none."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
