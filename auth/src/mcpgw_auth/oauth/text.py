"""Text a client supplies and a person reads: what may be kept, and how it is shown."""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls (NUL, CR, LF, ...); Cf: formatting, the bidirectional overrides, embeddings, isolates and marks
# among them (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F); Cs: a surrogate, never valid on its own (RFC 3629 §3);
# Zl, Zp: line and paragraph separators. None of them belongs in a one-line name, and a bidi control makes a name
# display as something else (Unicode TR #36 §2.1).
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Zero-width non-joiner and joiner (Cf) shape Persian and Indic scripts and emoji sequences; they reorder nothing.
_JOINERS = frozenset("\u200c\u200d")
REPLACEMENT = "\ufffd"


def is_control(ch: str) -> bool:
    """A character that is not shown as itself on a line of text: refused in names, replaced when shown."""
    return ch not in _JOINERS and unicodedata.category(ch) in _CONTROL_CATEGORIES


def text_problem(text: str) -> str | None:
    """Why `text` cannot be kept as a human-readable string (RFC 7591 §2 metadata), or None when it can."""
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            # JSON can carry one as "\ud800" (RFC 8259 §8.2); UTF-8 cannot encode it, so it could not be kept.
            return f"must be valid Unicode text (a lone surrogate U+{ord(ch):04X} is not)"
        if is_control(ch):
            return f"must not contain control or bidirectional formatting characters (U+{ord(ch):04X})"
    return None


def for_display(text: object) -> str:
    """`text` with every control character replaced by U+FFFD, so a stored name cannot reorder or hide a page."""
    return "".join(REPLACEMENT if is_control(ch) else ch for ch in str(text))


def for_description(value: object, limit: int = 200) -> str:
    """A client's value quoted in an error_description, which is printable ASCII without `"` or `\\` (RFC 6749 §5.2)."""
    return "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "?" for ch in str(value)[:limit])
