"""Delete a job's range blobs once the job has ended; returns how many were deleted."""

from shared.range_results import default_results


def main(jobId: str) -> int:  # noqa: N803 - the binding's name is the parameter's name
    return default_results().delete_job(jobId)
