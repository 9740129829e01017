"""Ports held to their references: ``initspec audit TARGET --reference NAME`` for every port whose
library this environment has, one JSON per library (bench/ports_<library>.json), read by
docs/findings/ports.md.  Run in the env of each library:

    tox env torch:     python bench/ports.py hf
    tox env keras-jax: python bench/ports.py keras_hub
    tox env timm:      python bench/ports.py timm
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LM = "num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128, vocab_size=1024"
CASES = {
    "hf": [
        ("hf:gpt2(n_layer=2, n_embd=64, n_head=2, vocab_size=1024)", "gpt2"),
        ("hf:gpt2(n_layer=2, n_embd=64, n_head=2, vocab_size=1024)", "nanogpt"),
        (f"hf:bert({LM})", "bert"),
        ("hf:t5(num_layers=2, num_decoder_layers=2, d_model=64, d_ff=128, num_heads=2, d_kv=32, "
         "vocab_size=1024)", "t5"),
        ("hf:ViTForImageClassification(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, "
         "intermediate_size=128, num_labels=10)", "vit"),
        (f"hf:GPTNeoXForCausalLM({LM})", "gpt_neox"),
        (f"hf:Olmo2ForCausalLM({LM}, num_key_value_heads=2)", "olmo2"),
        ("hf:MambaForCausalLM(num_hidden_layers=2, hidden_size=64, vocab_size=1024)", "mamba"),
        (f"hf:llama({LM}, num_key_value_heads=2)", "llama3_torchtitan"),
    ],
    "keras_hub": [
        ("keras_hub.models:GPT2Backbone(vocabulary_size=1024, num_layers=2, num_heads=2, hidden_dim=64, "
         "intermediate_dim=128, max_sequence_length=128)", "gpt2"),
        ("keras_hub.models:BertBackbone(vocabulary_size=1024, num_layers=2, num_heads=2, hidden_dim=64, "
         "intermediate_dim=128, max_sequence_length=128)", "bert"),
        ("keras_hub.models:T5Backbone(vocabulary_size=1024, num_layers=2, num_heads=2, hidden_dim=64, "
         "intermediate_dim=128, key_value_dim=32)", "t5"),
        ("keras_hub.models:ViTBackbone(image_shape=(64, 64, 3), patch_size=8, num_layers=2, num_heads=2, "
         "hidden_dim=64, mlp_dim=128)", "vit"),
        ("keras_hub.models:GPTNeoXBackbone(vocabulary_size=1024, num_layers=2, num_heads=2, hidden_dim=64, "
         "intermediate_dim=128)", "gpt_neox"),
    ],
    "timm": [
        ("timm:vit_tiny_patch16_224(num_classes=10, img_size=64)", "vit"),
    ],
}


def main(library: str) -> None:
    out = []
    for target, ref in CASES[library]:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "a.json"
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "initspec", "audit", target, "--reference", ref,
                                "--json", str(path)], capture_output=True, text=True)
            doc = json.loads(path.read_text()) if path.exists() else {}
        out.append({"target": target, "reference": ref, "exit": p.returncode, "seconds": time.perf_counter() - t0,
                    "framework_version": doc.get("framework_version"), "reference_verdicts": doc.get("reference"),
                    "stdout": p.stdout, "stderr_tail": p.stderr[-2000:]})
        print(p.stdout)
    Path(__file__).with_name(f"ports_{library}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
