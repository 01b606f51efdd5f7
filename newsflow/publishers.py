"""Publisher and site names as pages write them, compared loosely ("Nexstar Media Inc." = "Nexstar Media")."""

from __future__ import annotations

import re

# Legal-form words and articles that vary between spellings of one publisher's name.
_NOISE = re.compile(r"\b(?:the|inc|incorporated|llc|l\.l\.c|ltd|limited|corp|corporation|co|"
                    r"company|group|plc|gmbh|ag|sa|s\.a|nv|n\.v|holdings)\b\.?")
_NOT_ALNUM = re.compile(r"[\W_]+")
# Keys shorter than this are too vague to match by containment ("ap" is in many names).
MIN_CONTAINED = 4


def publisher_key(name: str) -> str:
    """name lower-cased, without legal forms, articles, spaces or punctuation."""
    return _NOT_ALNUM.sub("", _NOISE.sub(" ", name.lower()))


def same_publisher(name: str, other: str) -> bool:
    """Whether two names (publisher, site name or host label) name the same publisher.

    Equal keys, or one key inside the other ("vigourtimes" in "vigourtimescom"): sites write
    their own name with and without spaces, legal form or domain.
    """
    a, b = publisher_key(name), publisher_key(other)
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return short == long_ or (len(short) >= MIN_CONTAINED and short in long_)
