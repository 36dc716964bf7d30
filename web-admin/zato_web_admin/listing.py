"""Search and pagination of every list page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from zato_web_admin.http import Request

PAGE_SIZE = 25


@dataclass(frozen=True)
class Page:
    query: str
    number: int  # 1-based
    size: int = PAGE_SIZE
    total: int = 0

    @classmethod
    def from_request(cls, request: Request) -> Page:
        try:
            number = max(1, int(request.query.get('page', '1')))
        except ValueError:
            number = 1
        return cls(query=request.query.get('q', '').strip()[:200], number=number)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def with_total(self, total: int) -> Page:
        return replace(self, total=total)

    def link(self, number: int) -> str:
        return '?' + urlencode({'q': self.query, 'page': number} if self.query else {'page': number})

    def slice(self, items: Sequence[Any], text: Callable[[Any], str]) -> tuple[list[Any], Page]:
        """In-memory search (every keyword must appear in `text(item)`) and the current page of it."""
        words = self.query.lower().split()
        found = [item for item in items if all(w in text(item).lower() for w in words)]
        page = self.with_total(len(found))
        return found[page.offset:page.offset + page.size], page
