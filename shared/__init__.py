"""The audit API's own logic, kept out of the function folders so it can be unit-tested."""
