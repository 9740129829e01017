"""Shrinking rules shared by the libraries: a config's sizes made small, by the name of the field.

One table, so the docs can state it (docs/guides/scan.md): layer counts to 2, widths to 64, heads to
2, head dims to 32, feed-forward widths to 128, experts to 4 (2 per token), vocabularies to 1024
(kept above every special token id), position tables to 512, images to 64 px, classes to 10.  A
value already below its cap is kept.  Names are matched exactly (a rule keyed on a substring would
shrink ``num_labels`` with the layers).
"""

from __future__ import annotations

from typing import Any

LAYERS = 2
WIDTH = 64
HEADS = 2
HEAD_DIM = 32
FFN = 128
EXPERTS = 4
EXPERTS_PER_TOKEN = 2
VOCAB = 1024
POSITIONS = 512
IMAGE = 64
CLASSES = 10

#: the fields that count layers (a fallback shrinks these alone)
LAYER_KEYS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "num_encoder_layers", "num_decoder_layers",
              "encoder_layers", "decoder_layers", "decoder_num_layers", "encoder_num_layers", "num_text_layers",
              "num_vision_layers")

#: field name -> cap (an int field above the cap is set to it)
CAPS: dict[str, int] = {
    **dict.fromkeys(LAYER_KEYS, LAYERS),
    **dict.fromkeys(("hidden_size", "d_model", "n_embd", "embed_dim", "hidden_dim", "dim", "word_embed_proj_dim",
                     "projection_dim", "embedding_size", "decoder_hidden_size", "encoder_hidden_size",
                     "text_hidden_size", "vision_hidden_size", "projection_size"), WIDTH),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "num_heads", "encoder_attention_heads",
                     "decoder_attention_heads", "num_query_heads", "decoder_num_attention_heads"), HEADS),
    **dict.fromkeys(("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num"), HEADS),
    **dict.fromkeys(("head_dim", "d_kv", "key_value_dim", "attention_head_dim", "kv_channels", "qk_nope_head_dim",
                     "qk_rope_head_dim", "v_head_dim"), HEAD_DIM),
    **dict.fromkeys(("intermediate_size", "d_ff", "n_inner", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim",
                     "mlp_dim", "moe_intermediate_size", "shared_expert_intermediate_size", "intermediate_dim",
                     "decoder_intermediate_size", "ffn_hidden_size"), FFN),
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"), EXPERTS),
    **dict.fromkeys(("num_experts_per_tok", "moe_topk", "top_k", "num_experts_per_token"), EXPERTS_PER_TOKEN),
    **dict.fromkeys(("n_shared_experts", "num_shared_experts"), 1),
    **dict.fromkeys(("max_position_embeddings", "n_positions", "max_sequence_length"), POSITIONS),
    **dict.fromkeys(("image_size", "img_size"), IMAGE),
    "num_classes": CLASSES,
    "vocabulary_size": VOCAB,
    "vocab_size": VOCAB,
}

#: list fields (per stage or per layer) -> cap for each element
LIST_CAPS: dict[str, int] = {
    **dict.fromkeys(("depths", "num_layers", "layers", "stage_depths", "block_repeats", "num_blocks"), LAYERS),
    **dict.fromkeys(("hidden_sizes", "embed_dims", "widths", "dims", "neck_hidden_sizes", "channels",
                     "stage_channels", "decoder_hidden_sizes"), WIDTH),
    **dict.fromkeys(("num_attention_heads", "num_heads", "heads"), HEADS),
}

#: token ids an embedding must hold at build time (a padding_idx past the table fails)
SPECIAL_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "sep_token_id",
               "cls_token_id", "mask_token_id", "unk_token_id", "padding_idx")


def _ids(d: dict[str, Any]) -> list[int]:
    out = []
    for k in SPECIAL_IDS:
        v = d.get(k)
        for x in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(x, int) and not isinstance(x, bool):
                out.append(x)
    return out


def shrink_fields(d: dict[str, Any], parent_ids: tuple[int, ...] = (), keys: tuple[str, ...] | None = None
                  ) -> dict[str, Any]:
    """The overrides that bring the int fields of ``d`` (a config as a dict) under their caps, and
    the same for every nested config (a dict with a ``model_type``), as partial dicts; ``keys``
    limits the rules to those field names (the fallbacks shrink less)."""
    out: dict[str, Any] = {}
    shrink_vocab = keys is None or "vocab_size" in keys
    ids = _remap_ids(d, out) if shrink_vocab else {}
    for k, v in d.items():
        if isinstance(v, dict) and "model_type" in v:
            sub = shrink_fields(v, parent_ids, keys)
            if sub:
                out[k] = {"model_type": v["model_type"], **sub}
            continue
        if keys is not None and k not in keys:
            continue
        if isinstance(v, list) and v and k in LIST_CAPS and all(type(x) is int for x in v):
            small = [min(x, LIST_CAPS[k]) for x in v]
            if small != v:
                out[k] = small
            continue
        cap = CAPS.get(k)
        if cap is None or isinstance(v, bool) or not isinstance(v, int):
            continue
        if k in ("vocab_size", "vocabulary_size"):
            cap = max(cap, max([*ids.values(), *parent_ids], default=-1) + 1)
        if v > cap:
            out[k] = cap
    return out


def _remap_ids(d: dict[str, Any], out: dict[str, Any]) -> dict[int, int]:
    """Special token ids past the small vocabulary, moved to its last rows (distinct ids stay
    distinct): which row is the padding row does not change how the table is drawn."""
    big = sorted({i for i in _ids(d) if i >= VOCAB})
    new = {i: VOCAB - 1 - r for r, i in enumerate(reversed(big))}
    for k in SPECIAL_IDS:
        v = d.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v in new:
            out[k] = new[v]
        elif isinstance(v, list) and any(x in new for x in v if isinstance(x, int)):
            out[k] = [new.get(x, x) if isinstance(x, int) else x for x in v]
    return {i: new.get(i, i) for i in _ids(d)}

