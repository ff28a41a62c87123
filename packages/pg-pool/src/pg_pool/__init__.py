"""An asyncio connection pool for pg-client with asyncpg's Pool API.

Built only on pg_client's public API, so a service can upgrade its pool
without touching its client. ``create_pool()`` takes asyncpg's arguments,
plus ``max_lifetime``, ``ping_after_idle``/``ping_timeout``,
``max_waiting`` and ``reconnect_delay_min``/``reconnect_delay_max``.
"""

from __future__ import annotations

from .pool import (
    Pool,
    PoolAcquireContext,
    PoolConnectionProxy,
    PoolStats,
    TooManyWaitersError,
    create_pool,
)

__version__ = "0.1.0"

__all__ = [
    "Pool",
    "PoolAcquireContext",
    "PoolConnectionProxy",
    "PoolStats",
    "TooManyWaitersError",
    "__version__",
    "create_pool",
]
