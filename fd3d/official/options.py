"""Read one section of an official config so that nothing in it goes unnoticed.

A converter that silently skips an option it does not implement builds a different model that loads
the same weights: the worst kind of failure, because it looks like a bad checkpoint. Every key of a
section must therefore be read (and mapped), required to hold the one value fd3d implements, or
declared irrelevant to the forward pass (training-only settings); `done()` names whatever is left.
"""

from __future__ import annotations

from typing import Any

from fd3d.official.mmcv_config import OfficialConfigError

_MISSING = object()


class OptionReader:
    """Wraps a config dict `section` found at `where` (e.g. "model.img_backbone")."""

    def __init__(self, section: dict, where: str) -> None:
        if not isinstance(section, dict):
            raise OfficialConfigError(f"{where} must be a dict, got {type(section).__name__}")
        self.section, self.where = section, where
        self._read: set[str] = set()

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value of `key` (or `default`); an absent key without a default is an error."""
        self._read.add(key)
        if key in self.section:
            return self.section[key]
        if default is _MISSING:
            raise OfficialConfigError(f"{self.where}.{key} is missing")
        return default

    def require(self, key: str, supported: Any, default: Any = _MISSING) -> None:
        """`key` must hold `supported` (a value, or a tuple of accepted values)."""
        value = self.get(key, default)
        accepted = supported if isinstance(supported, tuple) else (supported,)
        if value not in accepted:
            valid = accepted[0] if len(accepted) == 1 else list(accepted)
            raise OfficialConfigError(
                f"{self.where}.{key} = {value!r} is not supported (fd3d implements {valid!r})"
            )

    def child(self, key: str) -> OptionReader:
        return OptionReader(self.get(key), f"{self.where}.{key}")

    def ignore(self, *keys: str) -> None:
        """Keys that do not change the test-mode forward (losses, init, memory, training-only)."""
        self._read.update(keys)

    def done(self) -> None:
        unread = sorted(set(self.section) - self._read)
        if unread:
            raise OfficialConfigError(f"{self.where}: options fd3d does not support: {unread}")
