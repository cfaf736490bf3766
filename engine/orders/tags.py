"""customTags: the idempotency key of every place intent.

A tag is unique per account and permanent at the Gateway (a reused tag is refused with errorCode 2 "already in use",
rejected orders' tags included), so one tag per *intent*, reused by every attempt of that intent, makes a second
order for the same intent impossible. A caller key (e.g. a risk rule's enforcement id) maps to a stable tag, so the
same key can never place twice either; without a key the tag is random.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from engine.gateway.outcome import MutationOutcome

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,48}$")
UNTAGGED_PREFIX = "untagged:"
"""Store key of an intent placed without a customTag (``idempotency.enabled: false``); never sent."""


def new_tag(prefix: str, key: str | None = None) -> str:
    """A fresh random tag, or the stable tag of caller key ``key`` (hashed when it is long or unusual)."""
    if key is None:
        return f"{prefix}{uuid.uuid4().hex[:24]}"
    if _SAFE_KEY.match(key):
        return f"{prefix}k-{key}"
    return f"{prefix}h-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def untagged_key(intent_id: str) -> str:
    return f"{UNTAGGED_PREFIX}{intent_id}"


def is_sent_tag(tag: str) -> bool:
    """Whether ``tag`` travels to the Gateway (False for the local key of an untagged intent)."""
    return not tag.startswith(UNTAGGED_PREFIX)


def tag_in_use(outcome: MutationOutcome) -> bool:
    """A place rejection saying the customTag was already used: an earlier attempt of this intent landed."""
    if not outcome.rejected or outcome.code != 2:
        return False
    text = (outcome.message or "").lower()
    return "tag" in text and ("in use" in text or "already" in text or "duplicate" in text)
