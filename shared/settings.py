"""App settings read from the environment (Azure app settings, or local.settings.json locally).

Every knob lives here so a reader sees in one place what the app can be told.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"App setting {name} must be an integer.") from None
    if not low <= value <= high:
        raise ValueError(f"App setting {name} must be between {low} and {high}.")
    return value


@dataclass(frozen=True)
class Settings:
    """The settings of one process; see README 'App settings'."""

    table_name: str = "audit"
    max_range_days: int = 366
    partition_days: int = 1
    max_activities_per_job: int = 16
    max_in_flight: int = 16
    retry_attempts: int = 4
    retry_first_interval_ms: int = 2000
    retry_backoff: float = 2.0
    retry_max_interval_ms: int = 30000
    status_retry_after_seconds: int = 5
    public_base_url: str = ""
    secret_cache_ttl_seconds: int = 300
    job_retention_days: int = 7
    idempotency_secret: str = field(default="", repr=False)  # an HMAC key: never printed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            table_name=env.get("AUDIT_TABLE_NAME", "").strip() or "audit",
            max_range_days=_int(env, "MAX_RANGE_DAYS", 366, 1, 36600),
            partition_days=_int(env, "PARTITION_DAYS", 1, 1, 3660),
            max_activities_per_job=_int(env, "MAX_ACTIVITIES_PER_JOB", 16, 1, 1000),
            max_in_flight=_int(env, "MAX_ACTIVITIES_IN_FLIGHT", 16, 1, 1000),
            retry_attempts=_int(env, "ACTIVITY_RETRY_ATTEMPTS", 4, 1, 20),
            retry_first_interval_ms=_int(
                env, "ACTIVITY_RETRY_FIRST_INTERVAL_MS", 2000, 1, 3_600_000
            ),
            retry_max_interval_ms=_int(env, "ACTIVITY_RETRY_MAX_INTERVAL_MS", 30000, 1, 3_600_000),
            status_retry_after_seconds=_int(env, "STATUS_RETRY_AFTER_SECONDS", 5, 1, 3600),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
            secret_cache_ttl_seconds=_int(env, "SECRET_CACHE_TTL_SECONDS", 300, 0, 86400),
            job_retention_days=_int(env, "JOB_RETENTION_DAYS", 7, 0, 3650),
            idempotency_secret=env.get("IDEMPOTENCY_SECRET", "").strip(),
        )
