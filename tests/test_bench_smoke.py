"""The benchmark harness in its seconds-long smoke mode, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT


def test_the_benchmark_harness_runs_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "benchmarks.json").read_text())
    assert data["query"]["distinct"] > 0  # the harness asserts the job equals the original query
    assert data["query"]["job_s"] > 0 and data["engine"]["jobs_per_s"] > 0
    assert data["status_polling"]["requests"] > 0 and data["status_polling"]["errors"] == 0
    assert len(data["scaling"]) == 2 and data["memory"]["peak_rss_mib"] > 0
    assert data["engine"]["jobs_per_s_one_process"] > 0
    # the modelled section checked every answer against the generator and measured the history
    modelled = data["modelled"]
    assert [r["days"] for r in modelled["sizes"]] == [4, 12]
    assert all(r["job_s"] > 0 and 0 < r["history_kib"] < 256 for r in modelled["sizes"])
    assert modelled["cached_pages"] > 0 and modelled["memory"]["worker_peak_mib"] > 0
    assert {r["days"] for r in data["overhead"]["rows"]} == {4, 12}
    markdown = (tmp_path / "benchmarks.md").read_text()
    for section in ("## Targets", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6."):
        assert section in markdown
