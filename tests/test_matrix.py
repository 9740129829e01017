"""``initspec matrix`` over every framework's manifest (pure TOML: no framework is imported).

The expected cells are written from the frameworks' documentation, not from the engine: the
point of the matrix is that entries land by the law they claim, not by their name.
"""

from __future__ import annotations

import pytest

from initspec._data import data_dir
from initspec.engine.compare import CANONICAL, matrix
from initspec.frameworks.manifest import load_manifest, manifest_path

FRAMEWORKS = sorted(p.stem for p in data_dir("adapters").glob("*.toml"))

#: (canonical row, framework, entry id), each with why it belongs there
CELLS = [
    ("glorot_normal", "torch", "xavier_normal_"),  # torch: a plain normal
    ("glorot_truncated_normal", "keras", "GlorotNormal"),  # Keras: a truncated normal of the same variance
    ("glorot_truncated_normal", "jax", "glorot_normal"),  # JAX's glorot_normal is truncated too
    ("glorot_truncated_normal", "tensorflow", "glorot_normal_initializer"),
    ("glorot_truncated_normal", "keras", "VarianceScaling(distribution=normal)"),  # Keras "normal" = truncated
    ("glorot_normal", "tensorflow", "variance_scaling_initializer(fan_avg,untruncated_normal)"),
    ("he_normal", "keras", "VarianceScaling(fan_in,untruncated_normal)"),  # scale 2, fan_in, normal
    ("he_normal", "torch", "kaiming_normal_"),
    ("he_normal", "numpy", "caffe_msra"),  # Caffe's msra filler: N(0, 2/fan_in)
    ("he_truncated_normal", "jax", "he_normal"),
    ("lecun_uniform", "numpy", "caffe_xavier"),  # Caffe's "xavier" is U(±sqrt(3/fan_in)), not Glorot's
    ("lecun_truncated_normal", "flax", "linen.Dense:kernel"),  # flax's default kernel_init
    ("lecun_normal", "flax", "linen.Embed:embedding"),  # variance_scaling(1, fan_in, normal)
    ("torch_linear_default", "torch", "Linear.weight"),  # kaiming_uniform_(a=sqrt(5)): U(±1/sqrt(fan_in))
    ("torch_linear_default", "torch", "kaiming_uniform_(a=sqrt5)"),
    ("torch_linear_default", "numpy", "glorot2010_heuristic"),  # U(±1/sqrt(n)), the same law
    ("orthogonal", "keras", "LSTM.recurrent_kernel"),
    ("zeros", "flax", "linen.Dense:bias"),
    ("ones", "torch", "LayerNorm.weight"),
]


@pytest.fixture(scope="module")
def table():
    header, rows = matrix(FRAMEWORKS)
    return header, {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}


def _ids(cell: str) -> list[str]:
    return [] if cell == "—" else cell.split(", ")


def test_all_six_manifests(table):
    header, rows = table
    assert FRAMEWORKS == ["flax", "jax", "keras", "numpy", "tensorflow", "torch"]
    assert header == ["scheme", *FRAMEWORKS]
    assert list(rows) == [*CANONICAL, "(other schemes)"]


@pytest.mark.parametrize(("scheme", "framework", "entry"), CELLS)
def test_entry_lands_on_the_law_it_claims(table, scheme, framework, entry):
    _, rows = table
    assert entry in _ids(rows[scheme][framework])
    assert [s for s in CANONICAL if entry in _ids(rows[s][framework])] == [scheme]  # and only there


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_entry_counted_once(table, framework):
    _, rows = table
    ids = [e.id for e in load_manifest(manifest_path(framework)).entries]
    placed = [i for s in CANONICAL for i in _ids(rows[s][framework])]
    assert sorted(placed) == sorted(set(placed)) and set(placed) <= set(ids)
    assert rows["(other schemes)"][framework] == f"{len(ids) - len(placed)} entries"


def test_cli_matrix_of_every_manifest_and_of_a_chosen_pair(run_cli, tmp_path):
    path = tmp_path / "all.md"
    code, _, err = run_cli("matrix", "--markdown", str(path))
    assert code == 0, err
    lines = path.read_text().splitlines()
    assert lines[0] == "| scheme | " + " | ".join(FRAMEWORKS) + " |"
    assert len(lines) == 2 + len(CANONICAL) + 1
    code, _, _ = run_cli("matrix", "torch", "keras", "--markdown", str(path))
    assert code == 0
    row = next(line for line in path.read_text().splitlines() if line.startswith("| glorot_normal |"))
    assert row.split(" | ")[1].startswith("xavier_normal_") and row.endswith("| — |")  # Keras: truncated


def test_cli_matrix_unknown_framework_is_exit_2(run_cli):
    code, out, err = run_cli("matrix", "nosuch")
    assert code == 2 and out == ""
    assert err.startswith("initspec: error: no manifest for framework 'nosuch'") and err.count("\n") == 1
