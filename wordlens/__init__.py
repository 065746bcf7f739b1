"""wordlens: similarity encoding (2 vs. 2, 1 vs. 2) of CNN layers against word embeddings.

Modules: ``stats`` (correlations, tests, nulls, p-values, FDR), ``models``, ``layers``,
``images``, ``activations`` (image side), ``words``, ``concepts`` (word side),
``fractalnet``, ``training``; ``config``, ``selection``, ``encoding``, ``tables`` (how the
workflow applies the methods) and ``stages`` (one module per rules/<stage>.smk, one function per rule).
"""

__version__ = "0.1.0"
