"""Name -> object registries: a dict plus a decorator (the shape of timm's, without the warnings).

Names in YAML reach code only through these; unknown or duplicate names raise with the valid list.
A package of entries, one module each, registers them with :func:`import_submodules`: a new
file registers itself, with no import list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"duplicate {self.kind} name {name!r}; registered: {', '.join(self.names())}"
                )
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[T]:
        """The entries, in the order of :meth:`names`."""
        return [self._entries[n] for n in self.names()]

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.names()]


def submodule_names(path: Iterable[str]) -> list[str]:
    """The public (non-underscore) modules and packages found in a package's ``__path__``,
    sorted."""
    return sorted({m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_")})


def import_submodules(package: str, path: Iterable[str]) -> list[ModuleType]:
    """Import every public submodule of ``package`` (``__name__``, ``__path__``) in sorted
    order, so that the registrations they make happen in a deterministic order."""
    return [importlib.import_module(f"{package}.{name}") for name in submodule_names(path)]
