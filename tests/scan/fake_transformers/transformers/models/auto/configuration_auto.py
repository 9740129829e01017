"""The fake transformers' model types of this release (``hf:`` targets list them in their refusals)."""

import transformers
from transformers import _V2

CONFIG_MAPPING = {c.model_type: c for c in (
    transformers.TinyGptConfig, transformers.TinyBertConfig, transformers.TinyRenamedConfig,
    transformers.TinyBrokenConfig, transformers.TinyNewConfig if _V2 else transformers.TinyRemovedConfig)}
