"""Typed configuration: the seed's camelCase YAML, environment variables and CLI flags.

``load_settings(path, env=..., overrides=...)`` is the one entry point; ``EngineSettings()`` alone is the seed's
defaults. Precedence: defaults < YAML file < ``ENGINE_*`` environment (``TOPSTEPX_USERNAME`` / ``TOPSTEPX_API_KEY``
for the credentials) < overrides. A bad configuration raises :class:`ConfigError` with one line per problem.
"""

from settings.errors import ConfigError
from settings.fields import TOKEN_LIFETIME_SECONDS
from settings.loader import load_settings
from settings.models import (
    ApiSettings,
    AuthenticationSettings,
    CircuitBreakerSettings,
    CredentialsSettings,
    DailyLossLimitSettings,
    DatabaseSettings,
    EngineSettings,
    ErrorHandlingSettings,
    HealthSettings,
    LoggingSettings,
    MaxContractsSettings,
    MaxTradesPerDaySettings,
    OrderManagementSettings,
    RateLimitSettings,
    RateWindowSettings,
    ReconnectionSettings,
    RetrySettings,
    RiskRulesSettings,
    SignalrSettings,
    StateReconciliationSettings,
    TokenRefreshSettings,
    TokenStorageSettings,
    TradingSessionSettings,
)
from settings.render import effective_config, effective_yaml
from settings.sources import API_KEY_ENV, ENV_NESTED_DELIMITER, ENV_PREFIX, USERNAME_ENV

__all__ = [
    "API_KEY_ENV",
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "TOKEN_LIFETIME_SECONDS",
    "USERNAME_ENV",
    "ApiSettings",
    "AuthenticationSettings",
    "CircuitBreakerSettings",
    "ConfigError",
    "CredentialsSettings",
    "DailyLossLimitSettings",
    "DatabaseSettings",
    "EngineSettings",
    "ErrorHandlingSettings",
    "HealthSettings",
    "LoggingSettings",
    "MaxContractsSettings",
    "MaxTradesPerDaySettings",
    "OrderManagementSettings",
    "RateLimitSettings",
    "RateWindowSettings",
    "ReconnectionSettings",
    "RetrySettings",
    "RiskRulesSettings",
    "SignalrSettings",
    "StateReconciliationSettings",
    "TokenRefreshSettings",
    "TokenStorageSettings",
    "TradingSessionSettings",
    "effective_config",
    "effective_yaml",
    "load_settings",
]
