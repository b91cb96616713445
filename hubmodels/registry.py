"""One pattern for everything looked up by name: backbones, datasets, presets, attacks,
training methods and encoder kinds.

A ``Registry`` is a dict from names to things that says what it holds, so a misspelt name fails
with the known ones listed; ``register`` adds an entry directly or as a decorator:

    ARCHITECTURES = Registry("architecture")
    ARCHITECTURES.register("small_cnn", SmallCNN)

    @DATASETS.register("fashion-mnist")
    def _fashion_mnist(...): ...

``hubmodels.list_architectures()`` and its siblings list each registry's names.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class Registry(dict[str, Any]):
    """Names to registered things, for one ``kind`` of thing."""

    def __init__(self, kind: str, entries: dict[str, Any] | None = None) -> None:
        super().__init__(entries or {})
        self.kind = kind

    def register(self, name: str, value: Any = None) -> Any:
        """Add ``value`` under ``name`` and return it; without a value, a decorator that does.

        A name is registered once: a second registration is a mistake, not an override.
        """
        if value is None:

            def decorate(thing: T) -> T:
                return self.register(name, thing)

            return decorate
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self[name] = value
        return value

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self)

    def lookup(self, name: str) -> Any:
        """The entry for ``name``; a ValueError lists the known names when there is none."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self[name]
