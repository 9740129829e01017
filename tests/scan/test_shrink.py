"""Shrinking rules: sizes under their caps, special token ids kept inside the small vocabulary."""

from initspec.scan import shrink


def test_sizes_are_capped_and_small_values_kept():
    d = {"model_type": "x", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
         "intermediate_size": 11008, "vocab_size": 32000, "num_labels": 7, "head_dim": 16}
    out = shrink.shrink_fields(d)
    assert out == {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
                   "vocab_size": 1024}


def test_special_ids_past_the_vocabulary_move_to_its_last_rows():
    d = {"vocab_size": 151936, "pad_token_id": 151643, "eos_token_id": [151645, 151643], "bos_token_id": 1}
    out = shrink.shrink_fields(d)
    assert out["vocab_size"] == 1024
    assert out["pad_token_id"] == 1022 and out["eos_token_id"] == [1023, 1022] and "bos_token_id" not in out


def test_nested_configs_are_partial_dicts_with_their_type():
    d = {"text_config": {"model_type": "llama", "hidden_size": 4096, "rope_theta": 1e4},
         "vision_config": {"model_type": "siglip", "patch_size": 14, "depths": [2, 2, 18, 2]}}
    assert shrink.shrink_fields(d) == {"text_config": {"model_type": "llama", "hidden_size": 64},
                                       "vision_config": {"model_type": "siglip", "depths": [2, 2, 2, 2]}}


def test_the_layer_only_fallback_touches_only_layer_counts():
    d = {"num_hidden_layers": 32, "hidden_size": 4096}
    assert shrink.shrink_fields(d, keys=shrink.LAYER_KEYS) == {"num_hidden_layers": 2}


def test_a_line_written_the_same_on_both_releases_is_not_a_change():
    """A lockfile line that fails while the new release identifies the very same law is unstable
    (the line does not hold its own model), not a difference between releases."""
    from types import SimpleNamespace as NS

    from initspec.scan.compare import LockSpec, changes

    def group(name, locked, now):
        rule = NS(expr=locked, glob=name, matched=1)
        return NS(name=name, members=[name], rule=rule, result=NS(diagnosis=[{"id": "wrong_scale", "message": ""}],
                                                                  error=None),
                  error="", identified=now, identified_expr=now, default=None, same_as=[])

    rep = NS(groups=[group("a", "normal(std=0.02)", "normal(std=0.01)"),
                     group("table", "uniform(low=-1.0, high=1.0)", "uniform(low=-1.0, high=1.0)")],
             verdict=lambda g: "fail")
    kinds = {c["group"]: c["kind"] for c in changes(rep, LockSpec("lock"))}
    assert kinds == {"a": "changed", "table": "unstable"}
