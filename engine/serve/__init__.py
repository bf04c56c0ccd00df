"""Serving TinyLLM behind the OpenAI chat API.

Three layers, each knowing only the one below:

- :mod:`engine.serve.types`: what a generation asks for and what it yields (no torch, no HTTP);
- the engine (:mod:`engine.serve.loaded`, :mod:`engine.serve.batch`, :mod:`engine.serve.engine`):
  one thread owns the model and runs every admitted request in one batch, token by token;
  :mod:`engine.serve.grammar` constrains a sequence to a JSON Schema with llguidance;
- the HTTP layer (:mod:`engine.serve.protocol`, :mod:`engine.serve.app`): OpenAI request and
  response shapes, errors, streaming and metrics.
"""
