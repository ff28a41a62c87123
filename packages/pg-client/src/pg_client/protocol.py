"""asyncpg.protocol's public name: ``Record``.

Programs that import ``from asyncpg.protocol import Record`` (for
``record_class`` subclasses or type hints) import it from here.
"""

from __future__ import annotations

from ._codecs import Record

__all__ = ("Record",)
