"""The four Gateway entities the engine keeps (account, order, position, trade) as compiled msgspec Structs.

Why not pydantic, like the rest of :mod:`engine.protocol.models`: these four arrive on every user-hub event and are
what the state mirror holds, hands to the risk rules and compares with REST snapshots. Reading one order dict into
a pydantic model cost ~2.5-4 us per event and the model held ~1.4 KB; msgspec reads the same dict in ~0.6 us into a
small object that the garbage collector never has to scan (the fields are scalars, so ``gc=False`` is safe).

What stays exactly as it was:

* **The reading.** :meth:`WireRecord.model_validate` takes the compiled path only for input it reads exactly as
  pydantic does (strict types, camelCase keys, RFC 3339 timestamps with a zone). Anything else (a number in a
  string, a naive timestamp, a missing field, not an object at all) goes to the record's *lenient twin*, a pydantic
  model generated from the same fields, which accepts what pydantic's lax mode accepts and raises its
  ``pydantic.ValidationError`` with its messages. A property test holds the two paths equal.
* **The API the engine uses.** Snake_case attributes, keyword construction, ``==``, :meth:`~WireRecord.wire`,
  :meth:`~WireRecord.model_dump`, :meth:`~WireRecord.model_copy`, and nesting in pydantic models (REST responses
  such as ``SearchOrderResponse.orders``), validated there by the twin.

What differs: construction trusts its arguments, as a dataclass does (mypy checks their types; untrusted data goes
through :meth:`~WireRecord.model_validate`); keys are read by their wire (camelCase) names only; a ``str`` subclass
(a ``StrEnum`` a Python caller passes) is kept as given where pydantic made it a ``str`` (JSON never holds one, and
checking each text field of each event for it would cost ~0.13 us per order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, Self, TypeVar, get_type_hints

import msgspec
import pydantic
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.timestamps import AwareDatetime, Timestamp, format_timestamp

_TWIN_CONFIG = ConfigDict(alias_generator=to_camel, extra="ignore")
"""The twin reads what the Struct reads: camelCase keys, unknown keys ignored (newer API versions add some)."""
_KEEP_DATETIMES = (datetime,)
_convert, _to_builtins, _asdict, _replace = msgspec.convert, msgspec.to_builtins, msgspec.structs.asdict, \
    msgspec.structs.replace


class WireRecord(msgspec.Struct, kw_only=True, rename="camel", gc=False):
    """Base of the four records: the shared reading, writing and pydantic integration. A record declares its fields
    only (timestamps as :data:`~engine.protocol.timestamps.AwareDatetime`) and is decorated with :func:`record`;
    a subclass without fields of its own (``GatewayUserOrder``) inherits what the decorator derived."""

    __lenient__: ClassVar[type[pydantic.BaseModel]]
    """The pydantic twin (same fields, same defaults, lax): the reading of everything the compiled path refuses."""
    __timestamp_keys__: ClassVar[tuple[str, ...]]
    """Wire names of the datetime fields (written in the Gateway's style by :meth:`wire`)."""
    __wire_names__: ClassVar[dict[str, str]]
    """Attribute name -> wire name."""

    # ------------------------------------------------------------------------------------------------ reading
    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """``data`` (a wire dict) as this record; raises ``pydantic.ValidationError`` naming what is wrong."""
        try:
            return _convert(data, cls, strict=True)
        except msgspec.ValidationError:
            return cls.from_lenient(cls.__lenient__.model_validate(data))

    @classmethod
    def from_lenient(cls, twin: pydantic.BaseModel) -> Self:
        """The record holding the values of its validated twin."""
        return cls(**{name: getattr(twin, name) for name in cls.__struct_fields__})

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: pydantic.GetCoreSchemaHandler) \
            -> core_schema.CoreSchema:
        """Inside a pydantic model (a REST response), the twin validates (lax, with pydantic's errors and locations)
        and the record is built from it; an instance (of this class or a subclass) passes as it is, as a pydantic
        model's does; its twin writes it, so the response's dump options apply to it (JSON by alias is :meth:`wire`)."""
        def validate(value: Any, twin: core_schema.ValidatorFunctionWrapHandler) -> WireRecord:
            # a wrap, not a union with an instance check: a union would prefix pydantic's error locations
            return value if isinstance(value, cls) else cls.from_lenient(twin(value))

        twin_schema = handler.generate_schema(cls.__lenient__)
        return core_schema.no_info_wrap_validator_function(
            validate, twin_schema,
            serialization=core_schema.plain_serializer_function_ser_schema(_as_twin, return_schema=twin_schema),
        )

    # ------------------------------------------------------------------------------------------------ writing
    def wire(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """JSON-ready dict with wire names, enums as their integers, timestamps in the Gateway's style
        (``exclude_none`` for stream payloads, which omit nulls)."""
        out: dict[str, Any] = _to_builtins(self, builtin_types=_KEEP_DATETIMES)
        for key in self.__timestamp_keys__:
            value = out[key]
            if value is not None:
                out[key] = format_timestamp(value)
        if exclude_none:
            return {key: value for key, value in out.items() if value is not None}
        return out

    def model_dump(self, *, mode: Literal["python", "json"] = "python", by_alias: bool = False,
                   exclude_none: bool = False) -> dict[str, Any]:
        """As pydantic's: ``mode="json"`` gives JSON types (the wire's), ``by_alias`` the wire names."""
        if mode == "json":
            out = self.wire(exclude_none=exclude_none)
            if by_alias:
                return out
            names = self.__wire_names__
            return {name: out[names[name]] for name in self.__struct_fields__ if names[name] in out}
        values: dict[str, Any] = _asdict(self)
        if exclude_none:
            values = {name: value for name, value in values.items() if value is not None}
        if by_alias:
            names = self.__wire_names__
            return {names[name]: value for name, value in values.items()}
        return values

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with ``update`` applied (attribute names; not validated, as pydantic's)."""
        return _replace(self, **(update or {}))


def _as_twin(value: WireRecord) -> pydantic.BaseModel:
    """A record nested in a response is written by its twin's serializer: every dump option of the response applies
    as it did to a nested pydantic model (a plain function returning a dict was written by pydantic's untyped
    serializer, which turned an infinite price into None in ``model_dump(mode="json")``)."""
    return value.__lenient__.model_construct(**_asdict(value))


R = TypeVar("R", bound=WireRecord)
_TWIN_TIMESTAMPS: dict[Any, Any] = {AwareDatetime: Timestamp, AwareDatetime | None: Timestamp | None}
"""A record's timestamp annotation -> its twin's (read by :func:`~engine.protocol.timestamps.parse_timestamp`)."""


def record(cls: type[R]) -> type[R]:
    """Derive what :class:`WireRecord` needs from the fields of ``cls``: wire names, timestamp keys and the lenient
    twin. A decorator rather than ``__init_subclass__``: msgspec fills in a Struct's fields after that hook runs."""
    hints = get_type_hints(cls, include_extras=True)
    fields = msgspec.structs.fields(cls)
    cls.__wire_names__ = {f.name: f.encode_name for f in fields}
    cls.__timestamp_keys__ = tuple(f.encode_name for f in fields if hints[f.name] in _TWIN_TIMESTAMPS)
    twin_fields: dict[str, Any] = {}
    for f in fields:
        annotation = _TWIN_TIMESTAMPS.get(hints[f.name], hints[f.name])
        twin_fields[f.name] = (annotation, ...) if f.required else (annotation, f.default)
    cls.__lenient__ = pydantic.create_model(cls.__name__, __config__=_TWIN_CONFIG, **twin_fields)
    return cls


@record
class TradingAccountModel(WireRecord, kw_only=True):
    id: int
    name: str
    balance: float = 0.0
    can_trade: bool
    is_visible: bool
    simulated: bool = False


@record
class OrderModel(WireRecord, kw_only=True):
    id: int
    account_id: int
    contract_id: str
    symbol_id: str | None = None
    creation_timestamp: AwareDatetime
    update_timestamp: AwareDatetime | None = None
    status: OrderStatus
    type: OrderType
    side: OrderSide
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    fill_volume: int = 0
    filled_price: float | None = None
    custom_tag: str | None = None
    trail_distance: int | None = None
    trail_price: float | None = None
    parent_order_id: int | None = None
    linked_order_id: int | None = None


@record
class PositionModel(WireRecord, kw_only=True):
    id: int
    account_id: int
    contract_id: str
    contract_display_name: str | None = None
    creation_timestamp: AwareDatetime
    type: PositionType
    size: int
    average_price: float


@record
class HalfTradeModel(WireRecord, kw_only=True):
    id: int
    account_id: int
    contract_id: str
    creation_timestamp: AwareDatetime
    price: float
    profit_and_loss: float | None = None
    fees: float = 0.0
    commissions: float | None = None
    side: OrderSide
    size: int
    voided: bool = False
    order_id: int
