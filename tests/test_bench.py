"""The benchmark command runs, reports ratios, and treats missing peers as absent
(the benchmark itself is not part of the suite: this runs one tiny case)."""
import json

import pytest

from opgraph.commands import bench_suite as bench


def test_missing_peer_is_absent_not_a_failure(monkeypatch):
    def absent():
        raise ImportError("No module named 'tropical_gemm'")
    monkeypatch.setattr(bench, "_tropical_gemm", absent)
    result = bench.run_benchmarks(["numpy"], quick=True, only=["128x128"], min_time=0.001)
    (row,) = result["rows"]
    assert row["results"]["tropical-gemm"]["status"] == "absent"
    assert row["results"]["numpy"]["status"] == "ok" and row["results"]["numpy"]["best_s"] > 0
    assert row["time_vs_best_peer"] == {}  # no peer, no ratio
    assert "absent" in bench.format_table(result)


def test_numba_row_has_ratios_and_agrees_with_tropical_gemm():
    pytest.importorskip("numba")
    result = bench.run_benchmarks(["numpy", "numba"], quick=True, only=["128x128"],
                                  min_time=0.001)
    (row,) = result["rows"]
    assert row["speedup_vs_numpy"]["numba"] > 0
    if row["results"]["tropical-gemm"]["status"] == "ok":
        assert row["agrees_with_tropical_gemm"] is True
        assert row["best_peer"] == "tropical-gemm"
    table = bench.format_table(result, markdown=True)
    assert table.startswith("| case | numpy | numba |")


def test_bench_command_writes_json(tmp_path, capsys):
    from opgraph.__main__ import main
    path = tmp_path / "new-folder" / "bench.json"  # the folder is created
    assert main(["bench", "--quick", "--backend", "numpy", "--only", "128x128", "--no-peers",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tropical max_plus 128x128" in out and "BLAS" in out
    data = json.loads(path.read_text())
    assert data["backends"] == ["numpy"] and len(data["rows"]) == 1


def test_bench_peers_only_times_no_backend(tmp_path, capsys):
    from opgraph.__main__ import main
    path = tmp_path / "peers.json"
    assert main(["bench", "--quick", "--peers-only", "--only", "128x128", "--json",
                 str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["backends"] == []
    (row,) = data["rows"]
    assert "numpy" not in row["results"] and "numba" not in row["results"]
    assert set(row["results"]) <= set(bench.PEERS)


@pytest.mark.parametrize("extra", [["--no-peers"], ["--backend", "numba"]])
def test_bench_peers_only_refuses_options_that_time_backends(extra, capsys):
    from opgraph.__main__ import main
    assert main(["bench", "--quick", "--peers-only", "--only", "128x128"] + extra) == 2
    assert "--peers-only" in capsys.readouterr().err
