"""Retry options that also carry a backoff.

The Python SDK's RetryOptions serialises only the first interval and the attempt count; the
Durable extension also reads `backoffCoefficient` and `maxRetryIntervalInMilliseconds` (the
JavaScript SDK sends them), so this subclass adds them to the action it emits.
"""

from __future__ import annotations

import azure.durable_functions as df


class BackoffRetryOptions(df.RetryOptions):
    def __init__(self, first_ms: int, attempts: int, backoff: float, max_interval_ms: int) -> None:
        super().__init__(first_ms, attempts)
        self.backoff_coefficient = backoff
        self.max_retry_interval_ms = max_interval_ms

    def to_json(self) -> dict:
        data = super().to_json()
        data["backoffCoefficient"] = self.backoff_coefficient
        data["maxRetryIntervalInMilliseconds"] = self.max_retry_interval_ms
        return data
