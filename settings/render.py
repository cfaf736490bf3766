"""The effective configuration as YAML, camelCase keys, every secret redacted (what ``config check`` prints).

Secrets are ``SecretStr`` fields; pydantic's JSON-mode dump already writes them as ``'**********'``, and this module
relies on that single rule instead of a list of secret key names that could fall behind the models. The output
loads back with :func:`settings.load_settings` (apart from the redacted secrets, which then read as the stars).
"""

from __future__ import annotations

from typing import Any

import yaml

from settings.models import EngineSettings


def effective_config(settings: EngineSettings) -> dict[str, Any]:
    """Plain data with camelCase keys; secrets are already replaced by stars."""
    data: dict[str, Any] = settings.model_dump(mode="json", by_alias=True)
    return data


class _Dumper(yaml.SafeDumper):
    """Block style for sections, one line for short lists of numbers (``delays: [0, 2000, 10000]``), as in the seed."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(item, int | float | str | bool) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def effective_yaml(settings: EngineSettings) -> str:
    return yaml.dump(
        effective_config(settings), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
