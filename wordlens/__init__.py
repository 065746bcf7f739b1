"""wordlens: similarity encoding (2 vs. 2, 1 vs. 2) of CNN layers against word embeddings.

Modules: ``stats`` (correlations, tests, nulls, p-values, FDR), ``models``, ``layers``,
``images``, ``activations`` (image side), ``words``, ``concepts`` (word side),
``fractalnet``, ``training``, and ``pipeline`` (the workflow's stages).
"""

__version__ = "0.1.0"
