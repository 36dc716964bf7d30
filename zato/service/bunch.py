"""A dict with attribute access, for ``self.request.input`` when a service has no SimpleIO."""

from __future__ import annotations

from typing import Any


class Bunch(dict):
    """``b.x`` is ``b['x']``; a missing attribute raises AttributeError naming it."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f'No input named `{name}`') from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


def bunchify(value: Any) -> Any:
    """Dicts as Bunches, inside lists and other dicts too: what ``self.invoke(..., as_bunch=True)`` returns."""
    if isinstance(value, dict):
        return Bunch((key, bunchify(item)) for key, item in value.items())
    if isinstance(value, list):
        return [bunchify(item) for item in value]
    return value
