"""The typed configuration: one model per section of the seed's ``config.yaml``, defaults equal to the seed's values.

Field names are the seed's camelCase keys in snake_case and the camelCase form is only a *serialization* alias:
validating by snake_case name is what lets environment variables deep-merge with the YAML file (see stack-notes.md),
and the YAML source translates camelCase to field names before validation (:mod:`settings.sources`).

Units stay the seed's units (milliseconds stay milliseconds, ``*Seconds`` stay seconds); the ``*_s`` properties are
conveniences for drivers that hand durations to ``trio.sleep`` or cancel scopes.

Models are frozen: the configuration is read once at start-up and then only passed around. A future section (for
example ``riskRules:``) is one more model and one more field on :class:`EngineSettings`; nothing else changes,
because the key translation, error paths and ``config check`` output are all derived from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from settings.fields import (
    AccountIds,
    AtLeastOne,
    DatabaseUrl,
    Days,
    DelayListMs,
    EnvVarName,
    ExpandedPath,
    HttpUrl,
    HubUrl,
    LogLevel,
    Money,
    Multiplier,
    NonNegativeInt,
    NonNegativeMs,
    PositiveMs,
    PositiveSeconds,
    RefreshBufferSeconds,
    RetryDelaysMs,
    StatusCode,
    SymbolLimits,
    TimeOfDay,
    TimeZoneName,
    Weekday,
    Weekdays,
    ws_url,
)

DEFAULT_STATE_DIR = Path("~/.local/state/topstepx-engine")
"""Where the engine keeps its files (encrypted token, SQLite database) unless told otherwise. ``~`` is expanded."""
TOKEN_FILE_NAME = "token.enc"
DATABASE_FILE_NAME = "engine.db"


def _default_state_dir() -> Path:
    return DEFAULT_STATE_DIR.expanduser()


def _sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / DATABASE_FILE_NAME}"


def _ms_to_s(ms: int) -> float:
    return ms / 1000.0


class Section(BaseModel):
    """Base of every section: unknown keys are errors, instances are immutable, camelCase when serialized."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        alias_generator=AliasGenerator(serialization_alias=to_camel),
    )


# --- api ------------------------------------------------------------------------------------------------------------


class ApiSettings(Section):
    base_url: HttpUrl = "https://api.topstepx.com"
    timeout: PositiveMs = 30_000
    user_hub_url: HubUrl = "https://rtc.topstepx.com/hubs/user"
    market_hub_url: HubUrl = "https://rtc.topstepx.com/hubs/market"

    @property
    def timeout_s(self) -> float:
        return _ms_to_s(self.timeout)

    @property
    def user_hub_ws_url(self) -> str:
        return ws_url(self.user_hub_url)

    @property
    def market_hub_ws_url(self) -> str:
        return ws_url(self.market_hub_url)


# --- authentication --------------------------------------------------------------------------------------------------


class TokenRefreshSettings(Section):
    buffer_seconds: RefreshBufferSeconds = 7_200
    max_retries: NonNegativeInt = 3
    retry_delay_ms: RetryDelaysMs = Field(default_factory=lambda: [1_000, 5_000, 15_000])

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        return tuple(_ms_to_s(ms) for ms in self.retry_delay_ms)


class TokenStorageSettings(Section):
    type: Literal["encrypted", "memory"] = "encrypted"
    encryption: Literal["AES-256"] = "AES-256"
    key_source: Literal["environment", "keyring"] = "environment"
    key_env: EnvVarName = "TOPSTEPX_TOKEN_KEY"
    """Name of the environment variable holding the base64 token-encryption key (the key itself is never read here)."""
    path: ExpandedPath = Field(default_factory=lambda: _default_state_dir() / TOKEN_FILE_NAME)


class AuthenticationSettings(Section):
    token_refresh: TokenRefreshSettings = Field(default_factory=TokenRefreshSettings)
    storage: TokenStorageSettings = Field(default_factory=TokenStorageSettings)


# --- signalr ---------------------------------------------------------------------------------------------------------


class ReconnectionSettings(Section):
    max_attempts: AtLeastOne = 10
    delays: DelayListMs = Field(default_factory=lambda: [0, 2_000, 10_000, 30_000, 60_000])
    max_delay_ms: PositiveMs = 60_000

    @property
    def delays_s(self) -> tuple[float, ...]:
        return tuple(_ms_to_s(ms) for ms in self.delays)

    @property
    def max_delay_s(self) -> float:
        return _ms_to_s(self.max_delay_ms)


class HealthSettings(Section):
    ping_interval: PositiveMs = 30_000
    ping_timeout: PositiveMs = 5_000
    stale_threshold: PositiveMs = 120_000

    @field_validator("stale_threshold")
    @classmethod
    def _longer_than_ping_interval(cls, value: int, info: ValidationInfo) -> int:
        interval = info.data.get("ping_interval")
        if isinstance(interval, int) and value <= interval:
            raise ValueError(f"expected more than signalr.health.pingInterval ({interval} ms)")
        return value

    @property
    def ping_interval_s(self) -> float:
        return _ms_to_s(self.ping_interval)

    @property
    def ping_timeout_s(self) -> float:
        return _ms_to_s(self.ping_timeout)

    @property
    def stale_threshold_s(self) -> float:
        return _ms_to_s(self.stale_threshold)


class SubscriptionSettings(Section):
    auto_resubscribe: bool = True
    resubscribe_delay: NonNegativeMs = 1_000

    @property
    def resubscribe_delay_s(self) -> float:
        return _ms_to_s(self.resubscribe_delay)


class SignalrSettings(Section):
    reconnection: ReconnectionSettings = Field(default_factory=ReconnectionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    subscriptions: SubscriptionSettings = Field(default_factory=SubscriptionSettings)


# --- errorHandling ---------------------------------------------------------------------------------------------------


class RetrySettings(Section):
    max_attempts: AtLeastOne = 5
    backoff_base: PositiveMs = 1_000
    backoff_multiplier: Multiplier = 2.0
    max_backoff_ms: PositiveMs = 60_000
    retryable_errors: list[StatusCode] = Field(default_factory=lambda: [408, 429, 500, 502, 503, 504])

    @field_validator("max_backoff_ms")
    @classmethod
    def _not_below_base(cls, value: int, info: ValidationInfo) -> int:
        base = info.data.get("backoff_base")
        if isinstance(base, int) and value < base:
            raise ValueError(f"expected at least errorHandling.retries.backoffBase ({base} ms)")
        return value

    @property
    def backoff_base_s(self) -> float:
        return _ms_to_s(self.backoff_base)

    @property
    def max_backoff_s(self) -> float:
        return _ms_to_s(self.max_backoff_ms)


class RateWindowSettings(Section):
    """A sliding window: at most ``requests`` calls per ``window_seconds``. Defaults: the history-endpoint limit."""

    requests: AtLeastOne = 50
    window_seconds: PositiveSeconds = 30


class GeneralRateWindowSettings(RateWindowSettings):
    """Same shape, other defaults: its own class so a partial ``general:`` section keeps the other default."""

    requests: AtLeastOne = 200
    window_seconds: PositiveSeconds = 60


class RateLimitSettings(Section):
    history: RateWindowSettings = Field(default_factory=RateWindowSettings)
    general: GeneralRateWindowSettings = Field(default_factory=GeneralRateWindowSettings)
    queue_size: AtLeastOne = 1_000
    drop_oldest: bool = True


class CircuitBreakerSettings(Section):
    failure_threshold: AtLeastOne = 5
    timeout: PositiveMs = 60_000
    half_open_requests: AtLeastOne = 3

    @property
    def timeout_s(self) -> float:
        return _ms_to_s(self.timeout)


class ErrorHandlingSettings(Section):
    retries: RetrySettings = Field(default_factory=RetrySettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)


# --- orderManagement -------------------------------------------------------------------------------------------------


class VerificationSettings(Section):
    enabled: bool = True
    timeout: PositiveMs = 5_000
    max_retries: NonNegativeInt = 3

    @property
    def timeout_s(self) -> float:
        return _ms_to_s(self.timeout)


class PartialFillSettings(Section):
    tracking_enabled: bool = True
    complete_timeout: PositiveMs = 60_000

    @property
    def complete_timeout_s(self) -> float:
        return _ms_to_s(self.complete_timeout)


class IdempotencySettings(Section):
    enabled: bool = True
    cache_ttl: PositiveSeconds = Field(default=3_600, serialization_alias="cacheTTL")
    """Seconds (the seed spells the key ``cacheTTL``)."""


class OrderManagementSettings(Section):
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    partial_fills: PartialFillSettings = Field(default_factory=PartialFillSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)


# --- stateReconciliation ---------------------------------------------------------------------------------------------


class StateReconciliationSettings(Section):
    enabled: bool = True
    on_reconnect: bool = True
    min_interval: NonNegativeMs = 5_000
    compare_positions: bool = True
    compare_orders: bool = True
    compare_account: bool = True

    @property
    def min_interval_s(self) -> float:
        return _ms_to_s(self.min_interval)


# --- database --------------------------------------------------------------------------------------------------------


class RetentionSettings(Section):
    daily_unrealized_pnl: Days = 7
    enforcement_logs: Days = 30
    order_history: Days = 90


class DatabaseSettings(Section):
    schema_version: AtLeastOne = 2
    url: DatabaseUrl = Field(default_factory=lambda: _sqlite_url(_default_state_dir()))
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for a file-based SQLite URL (so the store can create its directory), else None."""
        prefix = "sqlite:///"
        if not self.url.startswith(prefix):
            return None
        rest = self.url[len(prefix) :].split("?", 1)[0]
        return Path(rest) if rest and rest != ":memory:" else None


# --- logging ---------------------------------------------------------------------------------------------------------


class ResilienceLoggingSettings(Section):
    token_refresh: bool = True
    reconnections: bool = True
    error_retries: bool = True
    rate_limit: bool = True
    circuit_breaker: bool = True


class LoggingSettings(Section):
    level: LogLevel = "INFO"
    format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line (for log shippers); ``text``: one human-readable line per record."""
    resilience: ResilienceLoggingSettings = Field(default_factory=ResilienceLoggingSettings)


# --- riskRules (beyond the seed) -------------------------------------------------------------------------------------
# Every rule is off by default: the engine must never flatten an account because of a limit the operator never set.


class DailyLossLimitSettings(Section):
    enabled: bool = False
    limit: Money = 1_000.0
    """Breach when realized (P&L minus fees) + unrealized P&L of the trading day reaches -limit."""
    include_unrealized: bool = True
    mark_price: Literal["last", "bidAsk"] = "last"
    """Quote used to mark open positions: the last trade price, or the side a close would hit (bid for a long)."""
    snapshot_interval: PositiveMs = 60_000
    """How often the unrealized P&L is written to the daily snapshot table."""

    @property
    def snapshot_interval_s(self) -> float:
        return _ms_to_s(self.snapshot_interval)


class MaxContractsSettings(Section):
    enabled: bool = False
    total: AtLeastOne = 10
    """Open contracts over all positions of an account (absolute sizes)."""
    per_symbol: SymbolLimits = Field(default_factory=dict)

    @field_validator("per_symbol")
    @classmethod
    def _not_above_total(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        total = info.data.get("total")
        above = sorted(key for key, limit in value.items() if isinstance(total, int) and limit > total)
        if above:
            raise ValueError(f"expected limits of at most riskRules.maxContracts.total ({total}); {above[0]} is above")
        return value


_SESSION_DAYS: tuple[Weekday, ...] = ("Sun", "Mon", "Tue", "Wed", "Thu")
"""CME equity futures: the trading day opens Sunday to Thursday evening."""


class TradingSessionSettings(Section):
    """Positions and working orders are allowed only from ``start`` to ``end`` (an overnight window when end <= start)
    on the listed days (the day the window opens); ``flattenAt`` closes the window early (default: at ``end``)."""

    enabled: bool = False
    start: TimeOfDay = "17:00"
    end: TimeOfDay = "15:10"
    flatten_at: TimeOfDay | None = None
    days: Weekdays = Field(default_factory=lambda: list(_SESSION_DAYS))

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("start"):
            raise ValueError("expected another time than riskRules.tradingSession.start (the window would be empty)")
        return value

    @field_validator("flatten_at")
    @classmethod
    def _inside_window(cls, value: str | None, info: ValidationInfo) -> str | None:
        start, end = info.data.get("start"), info.data.get("end")
        if value is None or not isinstance(start, str) or not isinstance(end, str):
            return value
        inside = start < value <= end if start < end else (value > start or value <= end)
        if not inside:
            raise ValueError(f"expected a time after riskRules.tradingSession.start and not after end ({start}-{end})")
        return value


class MaxTradesPerDaySettings(Section):
    enabled: bool = False
    limit: AtLeastOne = 50
    """Filled orders per trading day (an order filled in several pieces counts once); breach when exceeded."""


class RiskRulesSettings(Section):
    enabled: bool = True
    """Master switch; each rule also has its own ``enabled`` (all off by default)."""
    time_zone: TimeZoneName = "America/Chicago"
    daily_reset: TimeOfDay = "17:00"
    """Start of the trading day (the CME boundary): ends a lockout and resets the daily counters."""
    daily_loss_limit: DailyLossLimitSettings = Field(default_factory=DailyLossLimitSettings)
    max_contracts: MaxContractsSettings = Field(default_factory=MaxContractsSettings)
    trading_session: TradingSessionSettings = Field(default_factory=TradingSessionSettings)
    max_trades_per_day: MaxTradesPerDaySettings = Field(default_factory=MaxTradesPerDaySettings)


# --- beyond the seed -------------------------------------------------------------------------------------------------


class CredentialsSettings(Section):
    """Login for the Gateway. Normally from ``TOPSTEPX_USERNAME`` / ``TOPSTEPX_API_KEY``; the environment wins."""

    username: str | None = None
    api_key: SecretStr | None = None


class EngineSettings(BaseSettings):
    """The whole configuration. ``EngineSettings()`` is the seed's defaults: it reads no file and no environment.

    Use :func:`settings.load_settings` to combine defaults < YAML file < ``ENGINE_*`` environment < overrides.
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        alias_generator=AliasGenerator(serialization_alias=to_camel),
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    authentication: AuthenticationSettings = Field(default_factory=AuthenticationSettings)
    signalr: SignalrSettings = Field(default_factory=SignalrSettings)
    error_handling: ErrorHandlingSettings = Field(default_factory=ErrorHandlingSettings)
    order_management: OrderManagementSettings = Field(default_factory=OrderManagementSettings)
    state_reconciliation: StateReconciliationSettings = Field(default_factory=StateReconciliationSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    risk_rules: RiskRulesSettings = Field(default_factory=RiskRulesSettings)
    state_dir: ExpandedPath = Field(default_factory=_default_state_dir)
    """Directory for the engine's files; the defaults of the token file and the SQLite database live under it."""
    accounts: AccountIds | None = None
    """Account ids to watch; None (the default) watches every active account."""
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructing the model stays pure (no env, no files): load_settings gathers the sources itself so that it
        # can tell, for every bad value, whether it came from the file, a variable or an override.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _files_follow_state_dir(cls, data: Any) -> Any:
        """A configured ``stateDir`` moves the token file and the database unless those are set explicitly."""
        raw = data.get("state_dir") if isinstance(data, dict) else None
        if not isinstance(raw, str | Path):
            return data
        state_dir = Path(raw).expanduser()
        data = dict(data)
        auth = data.get("authentication", {})
        if isinstance(auth, dict):
            storage = auth.get("storage", {})
            if isinstance(storage, dict) and "path" not in storage:
                data["authentication"] = {**auth, "storage": {**storage, "path": state_dir / TOKEN_FILE_NAME}}
        database = data.get("database", {})
        if isinstance(database, dict) and "url" not in database:
            data["database"] = {**database, "url": _sqlite_url(state_dir)}
        return data
