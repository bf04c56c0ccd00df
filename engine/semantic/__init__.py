"""Choosing files by meaning: an index of sentence embeddings of each file's name and first lines.

:mod:`engine.semantic.index` keeps the vectors in ``.routeshell/index.sqlite``,
:mod:`engine.semantic.search` ranks the files a match selects, and
:mod:`engine.semantic.embedder` (the only one that imports torch) computes the vectors; the other
two reach it by name, so that nothing loads a model before a ``semantic`` match needs one.
"""

#: What the vectors are: an index made by any other embedder (or text recipe) is built again.
EMBEDDER_ID = "all-MiniLM-L6-v2/mean-pooled/normalised/max-256-tokens"
#: The length of one vector.
DIMENSIONS = 384
