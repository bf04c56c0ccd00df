"""Serving TinyLLM behind the OpenAI chat API.

Three layers, each knowing only the one below:

- :mod:`engine.serve.types`: what a generation asks for and what it yields (no torch, no HTTP);
- the engine (:mod:`engine.serve.loaded`, :mod:`engine.serve.batch`, :mod:`engine.serve.engine`):
  one thread owns the model and runs every admitted request in one batch, token by token;
  :mod:`engine.serve.grammar` constrains a sequence to a JSON Schema with llguidance;
- the HTTP layer (:mod:`engine.serve.protocol`, :mod:`engine.serve.app`): OpenAI request and
  response shapes, errors, streaming and metrics.
"""

import logging

# transformers imports torchao when it is installed, and torchao then warns, on every start, about
# GPU kernel libraries a CPU machine does not need; torch warns about torchao's enums. Neither is
# the user's business.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)
