"""``load_settings``: defaults < YAML file < environment < overrides, validated once, every problem reported at once.

The layers are gathered here rather than by ``BaseSettings.__init__`` so that each leaf keeps its origin: an error
can then say ``ENGINE_API__TIMEOUT`` when the bad value came from the environment and ``api.timeout`` when it came
from the file. The only I/O is reading the file and the environment mapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from settings.errors import ConfigError, describe_validation_error
from settings.models import EngineSettings
from settings.sources import CamelCaseYamlSource, ConfigFileError, Layer, env_layer, merge_layers, overrides_layer


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EngineSettings:
    """Build the effective configuration or raise :class:`ConfigError` listing every problem, one line each.

    ``config_path``: the YAML file (camelCase keys as in the seed); None means defaults only.
    ``env``: the environment to read (default ``os.environ``): ``ENGINE_*`` variables (``__`` between levels, JSON
    for lists) and ``TOPSTEPX_USERNAME`` / ``TOPSTEPX_API_KEY``.
    ``overrides``: CLI-flag values, highest precedence; nested or dotted keys, camelCase or snake_case; None values
    are ignored.
    """
    layers: list[Layer] = []
    problems: list[str] = []
    file_ok = True
    if config_path is not None:
        try:
            layers.append(CamelCaseYamlSource(EngineSettings, Path(config_path)).layer)
        except ConfigFileError as exc:
            problems.append(str(exc))
            file_ok = False
    layers.append(env_layer(os.environ if env is None else env, EngineSettings))
    if overrides:
        layers.append(overrides_layer(overrides, EngineSettings))
    merged = merge_layers(layers)
    problems.extend(merged.problems)
    if not file_ok:
        # Validating without the file would only add noise (values the file may well have set correctly).
        raise ConfigError(problems)
    try:
        settings = EngineSettings.model_validate(merged.values)
    except ValidationError as exc:
        problems.extend(describe_validation_error(exc, EngineSettings, merged.origins))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return settings
