#!/usr/bin/env bash
# env: torch
# cwd: tmp
# drop: ^\[transformers\]
# A lockfile written on seeds 0..1 and checked on seeds 100..101; the same lockfile against a changed
# sinusoid table (48 positions), against a renamed parameter (simulated: the lockfile's k_proj lines
# renamed), and the refusals of bad targets and of a lockfile that would overwrite its spec.
initspec audit "hf:whisper(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=1)" --seeds 2 --draws --write-spec whisper.toml | tail -2
grep -E "^#|embed|encoder.layers.\*.self_attn.k_proj" whisper.toml
initspec audit "hf:whisper(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=1)" --seeds 2 --draws --seed 100 --spec whisper.toml --strict | tail -1
initspec audit "hf:whisper(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=48, max_target_positions=32, pad_token_id=1)" --seeds 2 --draws --seed 100 --spec whisper.toml | grep -E -A1 "^FAIL|^[0-9]+ groups"
@sed 's/encoder.layers.\*.self_attn.k_proj/encoder.layers.*.self_attn.key_proj/' whisper.toml > renamed.toml
initspec audit "hf:whisper(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=1)" --seeds 2 --draws --spec renamed.toml | grep -E "MISSING|UNCHK|^[0-9]+ groups"
initspec audit "hf:whisper(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=1)" --spec whisper.toml --write-spec ./whisper.toml
initspec audit hf:deberta_v2
initspec audit "hf:gpt2(n_layer='x')"
initspec audit hf:trocr
