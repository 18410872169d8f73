"""Count the distinct ids over a job's range blobs: the job's answer."""

from shared.range_results import default_results


def main(blobs: list) -> int:
    return default_results().count_distinct(blobs)
