"""asyncpg.connect_utils's public names: ``SSLMode`` and ``SessionAttribute``.

The enums with asyncpg's members and values, for programs that pass them to
``connect(ssl=..., target_session_attrs=...)``.
"""

from __future__ import annotations

from ._connect_params import SessionAttribute, SSLMode

__all__ = ("SSLMode", "SessionAttribute")
