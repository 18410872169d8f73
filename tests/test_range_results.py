"""Range results in blob storage: against Azurite's real blob service, and the settings that
find the account in Azure (the Functions host's own AzureWebJobsStorage__* names)."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient

from shared.connection import ConfigurationError
from shared.range_results import (
    BATCH,
    CONTAINER,
    READERS,
    RangeResults,
    _lines,
    blob_name,
    blob_service,
)


@pytest.fixture
def results(azurite, request) -> RangeResults:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return RangeResults(service.get_container_client(f"t{abs(hash(request.node.name))}"))


def test_a_job_saves_counts_and_deletes_its_ranges(results):
    first = results.save("job1", 0, ["A", "B", "C"])
    second = results.save("job1", 1, ["B", "C", "D"])
    assert first == {"blob": "job1/00000.txt", "ids": 3}
    assert second["blob"] == blob_name("job1", 1)
    results.save("job2", 0, ["Z"])
    assert results.count_distinct([first["blob"], second["blob"]]) == 4
    assert results.delete_job("job1") == 2
    assert results.delete_job("job1") == 0  # a repeated clean-up is harmless
    assert results.count_distinct(["job2/00000.txt"]) == 1


def test_saving_a_range_again_changes_nothing(results):
    """A retried or re-run activity writes the same blob: the count cannot double."""
    results.save("job", 0, ["A", "B"])
    results.save("job", 0, ["A", "B"])
    results.save("job", 1, ["B"])
    assert results.count_distinct([blob_name("job", 0), blob_name("job", 1)]) == 2
    names = [b.name for b in results.container.list_blobs()]
    assert names == [blob_name("job", 0), blob_name("job", 1)]


def test_an_empty_range_and_a_missing_container(results):
    assert results.delete_job("never") == 0  # no container yet
    assert results.save("job", 0, []) == {"blob": None, "ids": 0}  # an empty range: no blob
    assert results.delete_job("job") == 0


def test_more_blobs_than_one_read_or_delete_batch_holds(results):
    ranges = BATCH + READERS + 1
    names = [results.save("wide", i, [f"ID{i % 100}", "SHARED"])["blob"] for i in range(ranges)]
    assert results.count_distinct(names) == 101
    assert results.delete_job("wide") == ranges
    assert list(results.container.list_blobs()) == []


def test_big_blobs_are_read_in_chunks(results):
    ids = [f"ID{i:08d}" for i in range(300_000)]  # 3.3 MB: several download chunks
    results.save("big", 0, ids)
    results.save("big", 1, ids[::2])
    assert results.count_distinct([blob_name("big", 0), blob_name("big", 1)]) == 300_000


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"A\nB\n"], ["A", "B"]),
        ([b"A\nB", b"C\nD\n"], ["A", "BC", "D"]),  # a line split across two chunks
        ([b"AB", b"", b"C"], ["ABC"]),
        ([b"\n\n"], []),
        ([], []),
    ],
)
def test_lines_are_joined_across_chunks(chunks, lines):
    assert list(_lines(chunks)) == lines


def test_the_account_is_found_as_the_functions_host_finds_it():
    local = blob_service({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert local.url.startswith("http://127.0.0.1:10000/devstoreaccount1")
    identity = blob_service(
        {
            "AzureWebJobsStorage__blobServiceUri": "https://st1.blob.core.windows.net",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
        }
    )
    assert identity.url.startswith("https://st1.blob.core.windows.net")
    assert isinstance(identity.credential, ManagedIdentityCredential)
    by_name = blob_service({"AzureWebJobsStorage__accountName": "st2"})
    assert by_name.url.startswith("https://st2.blob.core.windows.net")
    assert isinstance(by_name.credential, DefaultAzureCredential)
    assert CONTAINER == "audit-job-ranges"  # the container infra/ creates, with its retention


def test_no_storage_setting_is_a_configuration_error_naming_the_settings():
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage__blobServiceUri"):
        blob_service({})
