"""The task mappings of the fake transformers (model type -> class name), per release."""

from transformers import _V2

MODEL_FOR_CAUSAL_LM_MAPPING_NAMES = {"tinygpt": "TinyGptForCausalLM"}
MODEL_FOR_MASKED_LM_MAPPING_NAMES = {"tinybert": "TinyBertForMaskedLM"}
MODEL_MAPPING_NAMES = {"tinyrenamed": "TinyRenamedModel", "tinybroken": "TinyBrokenModel",
                       **({"tiny_new": "TinyNewModel"} if _V2 else {"tiny_removed": "TinyRemovedModel"})}
