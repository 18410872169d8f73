"""Each range's distinct ids, kept in blob storage, never in the orchestration history.

An activity's output is part of the job's history, which the orchestrator replays on every
episode: ids there made a 366-day job's history 12.6 MB and its replay cost grow with the data.
So a range's ids go to a blob of the app's own storage account (AzureWebJobsStorage: identity-based
in Azure, Azurite locally) and the history holds only the blob's name and a count. Writing a range
twice writes the same blob with the same bytes, so a retried or re-run activity changes nothing.
The blobs of a job are deleted when it ends; a lifecycle rule (infra/) removes what a failed
clean-up leaves behind.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.connection import ConfigurationError

CONTAINER = "audit-job-ranges"
READERS = 8  # blobs the count reads at once
BATCH = 256  # the most deletes one blob batch request may carry
# One hung or refused call must cost seconds, not the SDK's minutes (its default retry waits
# 15 s, 18 s, 24 s, ...): explicit timeouts, two quick retries (1+2 s, 1+4 s); the activity's
# own retry policy does the rest.
CLIENT_OPTIONS = {
    "connection_timeout": 10,
    "read_timeout": 30,
    "retry_total": 2,
    "initial_backoff": 1,
    "increment_base": 2,
}


class RangeResult(TypedDict):
    """What a range's activity returns: all the history keeps of its ids (no blob: none)."""

    blob: str | None
    ids: int


def blob_name(job_id: str, index: int) -> str:
    return f"{job_id}/{index:05d}.txt"


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a blob read in chunks, a line split across two chunks joined again."""
    rest = b""
    for chunk in chunks:
        *complete, rest = (rest + chunk).split(b"\n")
        yield from (line.decode() for line in complete if line)
    if rest:
        yield rest.decode()


class RangeResults:
    """The blobs of every job's ranges, in one container."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._created = False

    def _ensure_container(self) -> None:
        """Azure's comes from infra/; Azurite's is made on first use."""
        if not self._created:
            try:
                self.container.create_container()
            except ResourceExistsError:
                pass
            self._created = True

    def save(self, job_id: str, index: int, ids: list[str]) -> RangeResult:
        """Store one range's sorted distinct ids (one per line); idempotent. An empty range
        stores nothing: most ranges of a sparse table cost no blob at all."""
        if not ids:
            return {"blob": None, "ids": 0}
        self._ensure_container()
        name = blob_name(job_id, index)
        data = "".join(f"{i}\n" for i in ids).encode()
        self.container.upload_blob(name, data, overwrite=True)
        return {"blob": name, "ids": len(ids)}

    def _ids(self, name: str) -> set[str]:
        return set(_lines(self.container.download_blob(name).chunks()))

    def count_distinct(self, names: Iterable[str]) -> int:
        """Distinct ids over the named blobs, READERS blobs at a time (one by one, the round
        trips were most of a short job's own cost), each streamed in chunks: memory grows with
        the distinct ids and READERS blobs, never with the blobs' total size."""
        seen: set[str] = set()
        names = list(names)
        with ThreadPoolExecutor(READERS) as pool:
            for first in range(0, len(names), READERS):
                for ids in pool.map(self._ids, names[first : first + READERS]):
                    seen |= ids
        return len(seen)

    def delete_job(self, job_id: str) -> int:
        """Delete a job's blobs, up to BATCH in one request; safe to repeat (a blob already
        gone is not an error)."""
        try:
            names = [b.name for b in self.container.list_blobs(name_starts_with=f"{job_id}/")]
        except ResourceNotFoundError:  # no container yet: nothing was ever saved
            return 0
        deleted = 0
        for first in range(0, len(names), BATCH):
            answers = self.container.delete_blobs(
                *names[first : first + BATCH], raise_on_any_failure=False
            )
            codes = [answer.status_code for answer in answers]
            if any(code not in (202, 404) for code in codes):
                raise HttpResponseError(f"could not delete every blob of job {job_id}: {codes}")
            deleted += codes.count(202)
        return deleted


def _credential(env: Mapping[str, str]) -> Any:
    """The identity the Functions host itself uses for AzureWebJobsStorage__* settings."""
    if env.get("AzureWebJobsStorage__credential", "").strip().lower() == "managedidentity":
        from azure.identity import ManagedIdentityCredential

        client_id = env.get("AzureWebJobsStorage__clientId", "").strip() or None
        return ManagedIdentityCredential(client_id=client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service(env: Mapping[str, str]) -> BlobServiceClient:
    """The app's storage account, from the settings the Functions host reads for it."""
    connection = env.get("AzureWebJobsStorage", "").strip()
    if connection:
        return BlobServiceClient.from_connection_string(connection, **CLIENT_OPTIONS)
    uri = env.get("AzureWebJobsStorage__blobServiceUri", "").strip()
    account = env.get("AzureWebJobsStorage__accountName", "").strip()
    if not uri and account:
        uri = f"https://{account}.blob.core.windows.net"
    if not uri:
        raise ConfigurationError(
            "No storage for range results: set AzureWebJobsStorage or "
            "AzureWebJobsStorage__blobServiceUri."
        )
    return BlobServiceClient(uri, credential=_credential(env), **CLIENT_OPTIONS)


@functools.cache
def default_results() -> RangeResults:
    """The process-wide store, built from the environment on first use."""
    return RangeResults(blob_service(os.environ).get_container_client(CONTAINER))
