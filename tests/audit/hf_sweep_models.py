"""The transformers model types of the audit's sweep, each with a shrunk config (transformers 5.24;
nothing downloaded): ``tests/audit/test_hf_sweep.py`` and ``bench/lockfile_false_alarms.py`` read
this table (a module of its own: another release's env need not have pytest)."""

from __future__ import annotations

ENC_DEC = ("d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, "
           "encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, max_position_embeddings=32")
BERTISH = "num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=96"
DECODER = "num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=96"
VISION = "hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8"
AUDIO = ("hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=[16, 16], "
         "conv_stride=[5, 2], conv_kernel=[10, 3], num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, "
         "vocab_size=32")

#: model type -> config overrides (transformers 5.24)
SWEEP = {
    "whisper": ("d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,"
                " encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=32, "
                "max_target_positions=32, pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=3"),
    "mamba": "hidden_size=32, num_hidden_layers=2, vocab_size=96, state_size=8",
    "rwkv": "hidden_size=32, num_hidden_layers=2, vocab_size=96, attention_hidden_size=32, intermediate_size=64, "
            "context_length=32",
    "pegasus": ENC_DEC,
    "marian": ENC_DEC + ", pad_token_id=95, decoder_start_token_id=95",
    "bart": ENC_DEC,
    "mbart": ENC_DEC,
    "t5": "num_layers=1, num_decoder_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, vocab_size=96",
    "gpt2": "n_layer=2, n_embd=32, n_head=2, vocab_size=96, n_positions=32",
    "bert": BERTISH + ", max_position_embeddings=32",
    "deberta-v2": BERTISH + ", max_position_embeddings=32",
    "xlm-roberta": BERTISH + ", max_position_embeddings=32",
    "esm": BERTISH.replace("vocab_size=96", "vocab_size=33") + ", pad_token_id=1, max_position_embeddings=32",
    "distilbert": "n_layers=1, dim=32, n_heads=2, hidden_dim=64, vocab_size=96, max_position_embeddings=32",
    "albert": BERTISH + ", embedding_size=16, max_position_embeddings=32",
    "llama": DECODER + ", num_key_value_heads=1",
    "mistral": DECODER + ", num_key_value_heads=1",
    "gemma": DECODER + ", num_key_value_heads=1, head_dim=16",
    "gpt_neox": DECODER,
    "opt": "num_hidden_layers=1, hidden_size=32, num_attention_heads=2, ffn_dim=64, vocab_size=96, "
           "max_position_embeddings=32, word_embed_proj_dim=32",
    "falcon": "num_hidden_layers=1, hidden_size=32, num_attention_heads=2, vocab_size=96",
    "bloom": "n_layer=1, hidden_size=32, n_head=2, vocab_size=96",
    "vit": VISION,
    "deit": VISION,
    "clip_vision_model": VISION,
    "dinov2": VISION.replace("intermediate_size=64", "mlp_ratio=2"),
    "convnext": "hidden_sizes=[16, 32], depths=[1, 1], num_stages=2",
    "resnet": "embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type='bottleneck'",
    "swin": "embed_dim=16, depths=[1, 1], num_heads=[1, 2], image_size=32, patch_size=4, window_size=4",
    "wav2vec2": AUDIO,
    "hubert": AUDIO,
}


def target(model_type: str) -> str:
    return f"hf:{model_type}({SWEEP[model_type]})"
