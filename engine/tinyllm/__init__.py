"""TinyLLM: a small language model trained from scratch on this machine.

The model is a stock transformers ``LlamaForCausalLM``; nothing here defines a model class, so a
checkpoint loads with ``AutoModelForCausalLM``, takes a PEFT adapter and converts like any Llama.

- ``presets``: the typed model presets (nano, tiny, small) and ``--config FILE``.
- ``tokenizer``: SentencePiece BPE trained on the corpus, saved as a transformers tokenizer
  with the chat template.
- ``corpus``: the pretraining documents (the standard library by default, plus ``--data``),
  the cleaning filters and the deterministic 80/10/10 split.
- ``sft_data``: the chat, TinyLLM and Alpaca row formats and the reasoning rows, read into one
  conversation shape; ``builtin_sets``: the SFT and reasoning sets built locally.
- ``features``: tokenizing, packing and assistant-only labels with ``datasets``, cached on disk.
- ``options``: what a train command asks for, checked before torch loads.
- ``train``: pretraining and SFT through transformers' ``Trainer`` (so ``torchrun`` and
  ``accelerate launch`` scale it out), checkpoints, resume and Ctrl-C; ``model_card``.

torch, transformers, datasets and peft are imported only from this package down (an
import-linter contract), and only by the modules that need them.
"""

import logging

# transformers imports torchao when it is installed, and torchao then warns, on every start, about
# GPU kernel libraries a CPU machine does not need; torch warns about torchao's enums. Neither is
# the user's business.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)
