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
from typing import Any, TypedDict

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.connection import ConfigurationError

CONTAINER = "audit-job-ranges"
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

    def count_distinct(self, names: Iterable[str]) -> int:
        """Distinct ids over the named blobs, streamed one chunk at a time: memory grows with
        the distinct ids, never with the blobs' total size."""
        seen: set[str] = set()
        for name in names:
            downloader = self.container.download_blob(name)
            seen.update(_lines(downloader.chunks()))
        return len(seen)

    def delete_job(self, job_id: str) -> int:
        """Delete a job's blobs; safe to repeat (a blob already gone is not an error)."""
        deleted = 0
        try:
            names = [b.name for b in self.container.list_blobs(name_starts_with=f"{job_id}/")]
        except ResourceNotFoundError:  # no container yet: nothing was ever saved
            return 0
        for name in names:
            try:
                self.container.delete_blob(name)
                deleted += 1
            except ResourceNotFoundError:
                pass
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
