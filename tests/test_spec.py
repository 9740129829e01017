"""The spec files, expression parsing and scheme resolution."""

import math

import pytest

from initspec.errors import InputError
from initspec.spec.schemes import gain, load_family, presets, resolve


def test_every_spec_file_validates_and_every_preset_resolves():
    names = [p.name for p in presets()]
    assert len(names) == len(set(names)) >= 30
    for name in names:
        assert resolve(name).name == name


@pytest.mark.parametrize(("expr", "kind", "expected"), [
    ("glorot_normal", "variance_scaling", {"scale": 1.0, "mode": "fan_avg", "distribution": "normal"}),
    ("xavier_uniform", "variance_scaling", {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}),
    ("he_normal(mode=fan_out)", "variance_scaling", {"scale": 2.0, "mode": "fan_out"}),
    ("kaiming_normal", "variance_scaling", {"scale": pytest.approx(2.0)}),
    ("kaiming_uniform(nonlinearity=tanh)", "variance_scaling", {"scale": pytest.approx(25 / 9)}),
    ("kaiming_normal(nonlinearity=leaky_relu, a=0.2)", "variance_scaling", {"scale": pytest.approx(2 / 1.04)}),
    ("kaiming_normal(nonlinearity=selu)", "variance_scaling", {"scale": pytest.approx(0.5625)}),
    ("torch_linear_default", "variance_scaling", {"scale": pytest.approx(1 / 3), "distribution": "uniform"}),
    ("glorot_normal(gain=2)", "variance_scaling", {"scale": 4.0, "mode": "fan_avg"}),
    ("variance_scaling(scale=2, mode=fan_in, distribution=truncated_normal)", "variance_scaling",
     {"scale": 2.0, "truncation_correction": "exact", "lower": -2.0, "upper": 2.0}),
    ("caffe_xavier(variance_norm=AVERAGE)", "variance_scaling", {"mode": "fan_avg", "distribution": "uniform"}),
    ("caffe_msra(variance_norm=FAN_OUT)", "variance_scaling", {"mode": "fan_out", "scale": 2.0}),
    ("tf1_variance_scaling", "variance_scaling",
     {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "truncation_correction": 1.3}),
    ("tf1_variance_scaling(factor=1.0, mode=FAN_AVG, uniform=True)", "variance_scaling",
     {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}),
    ("trunc_normal(std=0.02, a=-0.04, b=0.04)", "truncated_normal",
     {"std": 0.02, "lower": -0.04, "upper": 0.04, "bounds": "absolute"}),
    ("truncated_normal(stddev=0.05)", "truncated_normal", {"std": 0.05, "bounds": "std", "lower": -2.0}),
    ("uniform(minval=-0.05, maxval=0.05)", "uniform", {"low": -0.05, "high": 0.05}),
    ("eye", "identity", {"gain": 1.0}),
    ("orthogonal(gain=2)", "orthogonal", {"gain": 2.0}),
    ("sparse(sparsity=0.3)", "sparse", {"sparsity": 0.3, "std": 0.01}),
])
def test_resolve(expr, kind, expected):
    s = resolve(expr)
    assert s.kind == kind
    for key, value in expected.items():
        assert s.params[key] == value, key


def test_gain_table():
    assert gain("linear") == 1.0
    assert gain("relu") == pytest.approx(math.sqrt(2))
    assert gain("tanh") == pytest.approx(5 / 3)
    assert gain("selu") == 0.75
    assert gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert gain("leaky_relu", 0.0) == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize(("expr", "message"), [
    ("he_normall", "unknown scheme 'he_normall' (did you mean he_normal"),
    ("he_normal(mode=fan_sideways)", "mode 'fan_sideways' is not one of"),
    ("he_normal(scal=2)", "unknown parameter 'scal' (did you mean scale"),
    ("he_normal(2)", "pass arguments by keyword"),
    ("he_normal(scale=__import__('os'))", "is not a literal"),
    ("he_normal(scale=-1)", "scale must be a finite positive number in"),
    ("uniform(low=1, high=0)", "low (1.0) must be below high"),
    ("he_normal(", "not of the form"),
    ("kaiming_normal(nonlinearity=relux)", "unknown nonlinearity 'relux'"),
    ("caffe_xavier(variance_norm=MEDIAN)", "variance_norm='MEDIAN' is not one of"),
])
def test_bad_expressions_say_what_is_wrong(expr, message):
    with pytest.raises(InputError, match=None) as exc:
        resolve(expr)
    assert message in str(exc.value)


def test_malformed_spec_names_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('family = "x"\n\n[schemes.foo]\nkind = "variance_scaling"\nsummary = "s"\n'
                   'defaults = { scale = 1.0 }\nbogus = 3\n')
    with pytest.raises(InputError) as exc:
        load_family(bad)
    assert str(exc.value).startswith(f"{bad}:3: key schemes.foo:")
    assert "bogus" in str(exc.value)
    broken = tmp_path / "broken.toml"
    broken.write_text('family = "x"\n[schemes.foo\n')
    with pytest.raises(InputError, match="malformed TOML"):
        load_family(broken)


def test_unknown_default_parameter_is_rejected(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('family = "x"\n[schemes.foo]\nkind = "normal"\nsummary = "s"\ndefaults = { sd = 1.0 }\n')
    with pytest.raises(InputError, match=r"bad.toml:5: key schemes.foo: .sd. is not a parameter of kind normal"):
        load_family(bad)
