"""Reference taxonomies: WordNet 3.0's noun hierarchy, or any image set's own hierarchy file.

The category-clustering analyses compare a representation's clusters with a reference
taxonomy.  Two sources of one:

* WordNet 3.0 nouns, read from Princeton's own database files (``data.noun``,
  ``index.noun``).  :func:`fetch_wordnet` finds them or unpacks Debian's ``wordnet-base``
  package without root; an ImageNet wnid ``n02084071`` is the noun synset at byte offset
  2084071 of ``data.noun`` (:func:`wnid_to_offset`).
* A TSV file of ``child``/``parent`` edges over names (:func:`read_hierarchy_file`), for
  image sets that bring their own hierarchy.

Both become a mapping ``node -> [parents]`` (hypernyms) over which :func:`tree_distances`
computes a square matrix of distances between the given nodes:

``"path"``
    The length, in edges, of the shortest path between two nodes through a common
    ancestor: ``min`` over common ancestors ``c`` of ``d(a, c) + d(b, c)`` with ``d`` the
    shortest upward distance.  This is nltk's ``Synset.shortest_path_distance`` (which
    follows hypernyms and instance hypernyms alike); WordNet 3.0's nouns all meet at
    ``entity.n.01``, so nltk's ``simulate_root`` makes no difference for them.
``"wup"``
    ``1 - `` Wu-Palmer similarity, computed as nltk's ``Synset.wup_similarity`` does:
    the least common subsumer (LCS) is the common ancestor with the greatest *minimum*
    depth (ties: ``a`` or ``b`` itself if it is one, else the smallest name, as nltk's
    ``sorted(...)[0]``), and with node-counting depths (the "+1 convention": the root
    has depth 1)::

        D = max_depth(lcs) + 1
        wup = 2 D / ((p(a, lcs) + D) + (p(b, lcs) + D))

    where ``p`` is the "path" distance above (nltk's ``shortest_path_distance(a, lcs)``):
    under multiple inheritance it can be shorter than the upward distance from ``a`` to
    the LCS (real WordNet: dog.n.01 to vertebrate.n.01 is 4, through animal.n.01 via
    domestic_animal.n.01, while the way up through canine.n.02 is 5 edges).

    ``max_depth``/``min_depth`` (:func:`synset_depth`) count edges from the root, as
    nltk's ``Synset.max_depth()``/``min_depth()`` do (``entity.n.01`` has depth 0).

Multiple inheritance (several hypernyms, hypernyms plus instance hypernyms) is handled
as nltk does: distances are shortest paths over all parents; depths are the shortest
or longest path to the root.  A hierarchy with several roots (a forest) gets one
virtual root above all of them, so every pair is connected; it is a real node for
both measures (every depth grows by one).  WordNet 3.0's nouns have one root, so no
virtual root is added there.

The matrices are symmetric with a zero diagonal.  nltk's Wu-Palmer is not always: when
one synset is an ancestor of the other and another common ancestor is as deep, nltk's
``a.wup_similarity(b)`` takes ``a`` as the subsumer if ``a`` is the ancestor, else the first
by name; these matrices hold nltk's value with the ancestor as ``a``.  And nltk's
``wup_similarity(s, s)`` is below 1 whenever an ancestor of ``s`` has a greater minimum
depth than ``s`` (dog.n.01: 26/28, its subsumer being canine.n.02); here it is 1.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Where Debian/Ubuntu's ``wordnet-base`` package installs WordNet 3.0's database files.
DEBIAN_WORDNET = Path("/usr/share/wordnet")
#: The Debian package that holds them (``apt-get download`` + ``dpkg -x`` needs no root).
DEBIAN_PACKAGE = "wordnet-base"
#: The database files this module needs; the whole folder is copied when it is fetched.
WORDNET_FILES = ("data.noun", "index.noun")
MEASURES = ("path", "wup")

_WNID = re.compile(r"n(\d{8})")
_OFFSET = re.compile(r"\d{8}")
_VERSION = re.compile(rb"WordNet (\S+) Copyright")
_HYPERNYM_SYMBOLS = ("@", "@i")


# --------------------------------------------------------------------------------------
# wnids
# --------------------------------------------------------------------------------------


def wnid_to_offset(wnid: str) -> int:
    """``"n01440764"`` -> ``1440764``: the noun synset's byte offset in WordNet 3.0's data.noun."""
    if not isinstance(wnid, str) or (match := _WNID.fullmatch(wnid)) is None:
        raise ValueError(f"not a WordNet noun id ('n' and 8 digits, e.g. 'n01440764'): {wnid!r}")
    return int(match.group(1))


def offset_to_wnid(offset: int) -> str:
    """``1440764`` -> ``"n01440764"``."""
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset < 10**8:
        raise ValueError(f"not a WordNet synset offset (an integer of at most 8 digits): {offset!r}")
    return f"n{int(offset):08d}"


# --------------------------------------------------------------------------------------
# Obtaining the database files
# --------------------------------------------------------------------------------------


def _has_wordnet(folder: Path) -> bool:
    return all((folder / f).is_file() for f in WORDNET_FILES)


def _check_version(folder: Path) -> None:
    """Refuse a data.noun that says it is not WordNet 3.0: wnids are 3.0 offsets."""
    with open(folder / "data.noun", "rb") as f:
        head = f.read(4096)
    match = _VERSION.search(head)
    if match is None:
        log.warning("%s names no WordNet version in its license header; assuming 3.0", folder / "data.noun")
    elif match.group(1) != b"3.0":
        raise ValueError(
            f"{folder / 'data.noun'} is WordNet {match.group(1).decode(errors='replace')}, not 3.0: "
            "ImageNet's wnids are WordNet 3.0 offsets"
        )


def _install_dict(src: Path, dst: Path) -> None:
    """Copy the regular files of ``src`` into a temporary folder beside ``dst``, then rename it to ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        for f in sorted(src.iterdir()):
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
        if not _has_wordnet(tmp):
            raise FileNotFoundError(f"{src} lacks {' or '.join(WORDNET_FILES)}")
        _check_version(tmp)
        tmp.chmod(0o777 & ~_umask())
        if dst.exists():  # an incomplete folder (checked by the caller): set it aside, then replace it
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
            os.replace(dst, old / dst.name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, dst)
        except OSError:
            if not _has_wordnet(dst):  # not a concurrent fetch that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fetch_wordnet(root: str | os.PathLike, *, system_dir: str | os.PathLike = DEBIAN_WORDNET) -> Path:
    """Make sure WordNet 3.0's database files are under ``root``; return the folder holding data.noun.

    In order: ``root/dict`` or ``root`` itself already holding data.noun and index.noun;
    a copy of the system's files (``system_dir``, by default Debian/Ubuntu's
    ``/usr/share/wordnet`` of package ``wordnet-base``) into ``root/dict``; Debian's
    ``wordnet-base`` package fetched with ``apt-get download`` and unpacked with ``dpkg -x``
    (no root needed; the files are ``usr/share/wordnet/*`` inside it) into ``root/dict``;
    else a FileNotFoundError naming what was tried and how to provide the files.  The
    folder is written under a temporary name and renamed when complete.
    """
    root = Path(root)
    system_dir = Path(system_dir)
    dst = root / "dict"
    for folder in (dst, root):
        if _has_wordnet(folder):
            _check_version(folder)
            return folder
    attempts = [f"{dst}: no {' and '.join(WORDNET_FILES)}"]
    if _has_wordnet(system_dir):
        _install_dict(system_dir, dst)
        log.info("WordNet copied from %s to %s", system_dir, dst)
        return dst
    attempts.append(f"{system_dir}: no {' and '.join(WORDNET_FILES)} (package {DEBIAN_PACKAGE} not installed)")
    if shutil.which("apt-get") and shutil.which("dpkg"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=tmp, check=True,
                               capture_output=True, text=True, timeout=300)
                debs = sorted(Path(tmp).glob(f"{DEBIAN_PACKAGE}_*.deb"))
                subprocess.run(["dpkg", "-x", str(debs[-1]), str(Path(tmp) / "x")], check=True,
                               capture_output=True, text=True, timeout=300)
                unpacked = Path(tmp) / "x" / DEBIAN_WORDNET.relative_to("/")
                if _has_wordnet(unpacked):
                    _install_dict(unpacked, dst)
                    log.info("WordNet unpacked from Debian's %s package (%s) to %s", DEBIAN_PACKAGE,
                             debs[-1].name, dst)
                    return dst
                attempts.append(f"apt-get download {DEBIAN_PACKAGE}: the package has no "
                                f"{DEBIAN_WORDNET.relative_to('/')}/{{{','.join(WORDNET_FILES)}}}")
            except (subprocess.SubprocessError, OSError, IndexError) as err:
                detail = getattr(err, "stderr", "") or str(err) or type(err).__name__
                attempts.append(f"apt-get download {DEBIAN_PACKAGE} + dpkg -x: {detail.strip()[:300]}")
    else:
        attempts.append(f"apt-get download {DEBIAN_PACKAGE}: apt-get or dpkg not found")
    raise FileNotFoundError(
        f"WordNet 3.0 is not in {dst} and could not be obtained ({'; '.join(attempts)}). Install "
        f"Debian/Ubuntu's package {DEBIAN_PACKAGE} (files in {DEBIAN_WORDNET}), or put WordNet 3.0's "
        f"{' and '.join(WORDNET_FILES)} into {dst}: from the dict/ folder of Princeton's WordNet-3.0.tar.gz "
        "(https://wordnet.princeton.edu/download) or from nltk_data's corpora/wordnet."
    )


# --------------------------------------------------------------------------------------
# Reading data.noun and index.noun
# --------------------------------------------------------------------------------------


def _database_file(dict_dir: str | os.PathLike, name: str) -> Path:
    dict_dir = Path(dict_dir)
    path = dict_dir if dict_dir.name == name and dict_dir.is_file() else dict_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"no WordNet {name} at {path} (wordlens.wordnet.fetch_wordnet obtains one)")
    return path


def _parse_data_noun(path: Path) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Hypernyms (``@`` and ``@i``, in file order) and words of each synset of a data.noun."""
    data = path.read_bytes()
    hypernyms: dict[int, list[int]] = {}
    words: dict[int, list[str]] = {}
    pointed: dict[int, int] = {}  # a hypernym target -> the first line naming it
    position = 0
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        start, position = position, position + len(raw) + 1
        if not raw or raw.startswith(b"  "):  # the license header, or the final newline
            continue

        def bad(why: str, lineno=lineno, start=start, raw=raw) -> ValueError:
            return ValueError(f"{path}, line {lineno} (byte {start}): {why}: {raw[:80]!r}")

        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise bad(f"not UTF-8 ({err.reason})") from None
        columns, bar, _gloss = line.partition("|")
        if not bar:
            raise bad("no '|' before the gloss")
        fields = columns.split()
        if len(fields) < 6:
            raise bad("too few fields for a synset (offset lex_filenum ss_type w_cnt word lex_id ... p_cnt)")
        if not _OFFSET.fullmatch(fields[0]):
            raise bad(f"the synset offset {fields[0]!r} is not 8 digits")
        offset = int(fields[0])
        if offset != start:
            raise bad(f"the synset offset {fields[0]} differs from the line's byte position {start} "
                      "(in WordNet's data files they are equal; was the file edited or re-encoded?)")
        if fields[2] != "n":
            raise bad(f"ss_type {fields[2]!r} is not 'n' (a noun synset)")
        try:
            w_cnt = int(fields[3], 16)  # hexadecimal
        except ValueError:
            raise bad(f"w_cnt {fields[3]!r} is not a hexadecimal number") from None
        p_at = 4 + 2 * w_cnt
        if w_cnt < 1 or len(fields) <= p_at:
            raise bad(f"w_cnt {fields[3]} (= {w_cnt} words) does not fit the line")
        try:
            p_cnt = int(fields[p_at])
        except ValueError:
            raise bad(f"p_cnt {fields[p_at]!r} (after {w_cnt} words) is not a number") from None
        pointers = fields[p_at + 1:]
        if len(pointers) != 4 * p_cnt:
            raise bad(f"p_cnt {p_cnt} needs {4 * p_cnt} pointer fields, the line has {len(pointers)}")
        parents = []
        for k in range(0, len(pointers), 4):
            symbol, target, pos, _source_target = pointers[k:k + 4]
            if symbol in _HYPERNYM_SYMBOLS:
                if not _OFFSET.fullmatch(target) or pos != "n":
                    raise bad(f"hypernym pointer {' '.join(pointers[k:k + 4])!r} is not '{symbol} <8 digits> n ....'")
                parents.append(int(target))
                pointed.setdefault(int(target), lineno)
        hypernyms[offset] = parents
        words[offset] = [re.sub(r"\([^()]*\)$", "", w) for w in fields[4:p_at:2]]
    if not hypernyms:
        raise ValueError(f"{path} holds no synsets: is it WordNet's data.noun?")
    for target, lineno in pointed.items():
        if target not in hypernyms:
            raise ValueError(f"{path}, line {lineno}: hypernym {target:08d} is not a synset offset of the file")
    return hypernyms, words


@functools.lru_cache(maxsize=2)
def _cached_data_noun(path: str, _mtime_ns: int, _size: int):
    return _parse_data_noun(Path(path))


def _data_noun(dict_dir: str | os.PathLike) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    path = _database_file(dict_dir, "data.noun").resolve()
    stat = path.stat()
    return _cached_data_noun(str(path), stat.st_mtime_ns, stat.st_size)


def read_hypernyms(dict_dir: str | os.PathLike) -> dict[int, list[int]]:
    """Each noun synset's hypernyms (pointers ``@``) and instance hypernyms (``@i``), by offset.

    ``dict_dir`` is the folder holding WordNet's data.noun (or the file itself).  Every
    synset is a key; ``entity.n.01`` (offset 1740) maps to ``[]``.  A ValueError names
    the file, line and field of a malformed line.
    """
    hypernyms, _ = _data_noun(dict_dir)
    return {offset: list(parents) for offset, parents in hypernyms.items()}


def read_lemma_names(dict_dir: str | os.PathLike, *, all_words: bool = False) -> dict[int, str] | dict[int, list[str]]:
    """Each noun synset's first word, as WordNet spells it (``"dog"``, ``"great_white_shark"``), by offset.

    With ``all_words`` its words in WordNet's order.  Replace ``_`` by spaces for labels.
    """
    _, words = _data_noun(dict_dir)
    if all_words:
        return {offset: list(w) for offset, w in words.items()}
    return {offset: w[0] for offset, w in words.items()}


def read_synset_names(dict_dir: str | os.PathLike) -> dict[int, str]:
    """nltk's names of the noun synsets (``"dog.n.01"``), by offset: first word, lower-cased, and
    the synset's sense number among that word's senses in index.noun."""
    _, words = _data_noun(dict_dir)
    path = _database_file(dict_dir, "index.noun")
    senses: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.startswith(" ") or not line.strip():
                continue
            fields = line.split()
            try:
                synset_cnt = int(fields[2])
                offsets = [int(o) for o in fields[len(fields) - synset_cnt:]]
                if synset_cnt < 1 or fields[1] != "n" or len(fields) < 6 + synset_cnt:
                    raise ValueError
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {lineno}: not an index.noun line "
                                 f"(lemma n synset_cnt p_cnt ... sense_cnt tagsense_cnt offsets): "
                                 f"{line[:80]!r}") from None
            senses[fields[0]] = offsets
    names = {}
    for offset, w in words.items():
        lemma = w[0].lower()
        try:
            names[offset] = f"{lemma}.n.{senses[lemma].index(offset) + 1:02d}"
        except (KeyError, ValueError):
            raise ValueError(f"{path} does not list synset {offset:08d} among the senses of {lemma!r}") from None
    return names


# --------------------------------------------------------------------------------------
# Depths and distances over a hypernym DAG
# --------------------------------------------------------------------------------------


class _VirtualRoot:
    """The root added above the roots of a forest."""

    def __repr__(self) -> str:
        return "<virtual root>"


_VIRTUAL_ROOT = _VirtualRoot()


def _describe(node: Hashable) -> str:
    if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
        return f"{int(node):08d}"
    return repr(node) if not isinstance(node, str) else node


class _Graph:
    """A hypernym mapping with its depths, ancestor distances and, for a forest, a virtual root."""

    def __init__(self, hypernyms: Mapping[Hashable, Sequence[Hashable]]):
        self.hypernyms = hypernyms
        roots = {node for node, parents in hypernyms.items() if not parents}
        roots.update(p for parents in hypernyms.values() for p in parents if p not in hypernyms)
        self.virtual = len(roots) > 1
        self.min_depth: dict[Hashable, int] = {}
        self.max_depth: dict[Hashable, int] = {}
        self._ancestors: dict[Hashable, dict[Hashable, int]] = {}

    def known(self, node: Hashable) -> bool:
        return node in self.hypernyms

    def parents(self, node: Hashable) -> Sequence[Hashable]:
        if node is _VIRTUAL_ROOT:
            return ()
        parents = self.hypernyms.get(node, ())
        return parents if parents or not self.virtual else (_VIRTUAL_ROOT,)

    def ancestors(self, node: Hashable) -> dict[Hashable, int]:
        """Shortest upward distance to each ancestor, the node itself at 0 (nltk's BFS)."""
        if node not in self._ancestors:
            queue = deque([(node, 0)])
            dist: dict[Hashable, int] = {}
            while queue:
                s, d = queue.popleft()
                if s in dist:
                    continue
                dist[s] = d
                queue.extend((p, d + 1) for p in self.parents(s))
            self._ancestors[node] = dist
        return self._ancestors[node]

    def depths(self, node: Hashable) -> tuple[int, int]:
        """(min, max) edges to the root, computed for ``node`` and its ancestors; a cycle is an error."""
        if node not in self.min_depth:
            stack = [(node, iter(self.parents(node)))]
            on_path = {node: 0}
            path = [node]
            while stack:
                current, pending = stack[-1]
                for p in pending:
                    if p in self.min_depth:
                        continue
                    if p in on_path:
                        cycle = " -> ".join(_describe(n) for n in [*path[on_path[p]:], p])
                        raise ValueError(f"the hypernym graph has a cycle: {cycle} (each arrow: child -> parent)")
                    on_path[p] = len(path)
                    path.append(p)
                    stack.append((p, iter(self.parents(p))))
                    break
                else:
                    stack.pop()
                    path.pop()
                    del on_path[current]
                    parents = self.parents(current)
                    self.min_depth[current] = 1 + min(self.min_depth[p] for p in parents) if parents else 0
                    self.max_depth[current] = 1 + max(self.max_depth[p] for p in parents) if parents else 0
        return self.min_depth[node], self.max_depth[node]


def _check_nodes(graph: _Graph, nodes: Iterable[Hashable]) -> None:
    missing = [n for n in dict.fromkeys(nodes) if not graph.known(n)]
    if missing:
        shown = ", ".join(_describe(n) for n in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(f"{len(missing)} node(s) not in the hypernym table: {shown}{more}")


def synset_depth(node: Hashable, hypernyms: Mapping[Hashable, Sequence[Hashable]], kind: str = "min") -> int:
    """Edges from ``node`` up to the root: the shortest path (``kind="min"``, nltk's ``min_depth()``)
    or the longest (``kind="max"``, ``max_depth()``).  The root has depth 0; real WordNet 3.0
    gives dog.n.01 (offset 2084071) min 8 (via domestic_animal), max 13 (via canine)."""
    if kind not in ("min", "max"):
        raise ValueError(f"kind must be 'min' or 'max', not {kind!r}")
    graph = _Graph(hypernyms)
    _check_nodes(graph, [node])
    low, high = graph.depths(node)
    return low if kind == "min" else high


def _name_key(names: Mapping[Hashable, str] | None) -> Callable[[Hashable], object]:
    if names is None:
        return lambda n: (0, "") if n is _VIRTUAL_ROOT else (1, n)
    return lambda n: (0, "") if n is _VIRTUAL_ROOT else (1, names[n])


def lowest_common_hypernyms(a: Hashable, b: Hashable, hypernyms: Mapping[Hashable, Sequence[Hashable]], *,
                            use_min_depth: bool = False, names: Mapping[Hashable, str] | None = None) -> list:
    """The deepest common ancestors of ``a`` and ``b`` (each counts as its own ancestor), sorted.

    As nltk's ``Synset.lowest_common_hypernyms``: deepest by ``max_depth`` unless
    ``use_min_depth`` (what Wu-Palmer uses).  Sorted by ``names[node]`` when given (nltk
    sorts by synset name), else by the nodes themselves.  A forest's virtual root is
    returned as ``None``.
    """
    graph = _Graph(hypernyms)
    _check_nodes(graph, [a, b])
    common = graph.ancestors(a).keys() & graph.ancestors(b).keys()
    depth = {c: graph.depths(c)[0 if use_min_depth else 1] for c in common}
    best = max(depth.values())
    lowest = sorted((c for c in common if depth[c] == best), key=_name_key(names))
    return [None if c is _VIRTUAL_ROOT else c for c in lowest]


def tree_distances(offsets: Sequence[Hashable], hypernyms: Mapping[Hashable, Sequence[Hashable]],
                   measure: str = "path", *, names: Mapping[Hashable, str] | None = None,
                   lcs: str = "min_depth") -> np.ndarray:
    """The ``len(offsets)`` x ``len(offsets)`` matrix of taxonomy distances between the nodes.

    ``offsets``: WordNet offsets with :func:`read_hypernyms`' table, or any nodes of a
    ``node -> [parents]`` mapping (:func:`read_hierarchy`).  ``measure``: ``"path"``
    (shortest path length in edges) or ``"wup"`` (1 - Wu-Palmer similarity); see the
    module's docstring for the exact definitions (nltk's).  ``names``: a sortable name per
    node, for Wu-Palmer's tie between equally deep subsumers (:func:`read_synset_names`
    reproduces nltk's choice); by default the nodes themselves are compared.  ``lcs``: which
    common ancestor is Wu-Palmer's subsumer, the one of greatest ``"min_depth"`` (nltk's
    ``wup_similarity``) or of greatest ``"max_depth"`` (nltk's ``lowest_common_hypernyms``
    default).  With ``"min_depth"`` a short second path to the root pulls the subsumer up:
    in WordNet 3.0 every pair of ImageNet's 118 dog classes gets canine.n.02 (min_depth 12;
    dog.n.01 has 8 through domestic_animal.n.01), with ``"max_depth"`` terrier.n.01 etc.

    The result is symmetric float64 with a zero diagonal.  Cost: one ancestor table per
    node and, per common ancestor, one block update of the matrix (1000 ImageNet classes
    take well under a second).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")
    if lcs not in ("min_depth", "max_depth"):
        raise ValueError(f"lcs must be 'min_depth' or 'max_depth', not {lcs!r}")
    nodes = list(offsets)
    graph = _Graph(hypernyms)
    _check_nodes(graph, nodes)
    w = len(nodes)
    members: dict[Hashable, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, node in enumerate(nodes):
        for ancestor, d in graph.ancestors(node).items():
            idx, dist = members[ancestor]
            idx.append(i)
            dist.append(d)
    blocks = {a: (np.asarray(idx, dtype=np.intp), np.asarray(dist, dtype=np.float64))
              for a, (idx, dist) in members.items()}

    if measure == "path":
        out = np.full((w, w), np.inf)
        for idx, dist in blocks.values():
            if len(idx) > 1:
                grid = np.ix_(idx, idx)
                out[grid] = np.minimum(out[grid], dist[:, None] + dist[None, :])
        np.fill_diagonal(out, 0.0)
        return out

    # Wu-Palmer: the LCS of a pair is its common ancestor of greatest min_depth, ties broken by
    # the smallest name.  Visit ancestors from least to most preferred; the last write wins.
    # p(a, lcs) is nltk's shortest_path_distance(a, lcs): the shortest path through any common
    # hypernym, shorter than the upward distance where a second parent of ``a`` is a shortcut.
    for ancestor in blocks:
        graph.depths(ancestor)
    for ancestor, (idx, _) in members.items():
        above = graph.ancestors(ancestor)
        paths = []
        for i in idx:
            mine = graph.ancestors(nodes[i])
            paths.append(min(d + mine[c] for c, d in above.items() if c in mine))
        blocks[ancestor] = (blocks[ancestor][0], np.asarray(paths, dtype=np.float64))
    path_to = {a: dict(zip(idx.tolist(), dist.tolist())) for a, (idx, dist) in blocks.items()}
    by_name = sorted(blocks, key=_name_key(names))
    name_rank = {a: r for r, a in enumerate(by_name)}
    rank_depth = graph.min_depth if lcs == "min_depth" else graph.max_depth
    order = sorted(blocks, key=lambda a: (rank_depth[a], -name_rank[a]))
    lcs_rank_depth = np.full((w, w), -1, dtype=np.int64)
    lcs_depth = np.zeros((w, w))  # max_depth(lcs) + 1
    lengths = np.zeros((w, w))    # p(a, lcs) + p(b, lcs)
    for ancestor in order:
        idx, dist = blocks[ancestor]
        grid = np.ix_(idx, idx)
        lcs_rank_depth[grid] = rank_depth[ancestor]
        lcs_depth[grid] = graph.max_depth[ancestor] + 1
        lengths[grid] = dist[:, None] + dist[None, :]
    # nltk prefers a or b itself among equally deep subsumers (``self if self in subsumers``).
    position: dict[Hashable, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        position[node].append(i)
    for j, node in enumerate(nodes):
        for ancestor in graph.ancestors(node):
            for i in position.get(ancestor, ()):  # nodes[i] is an ancestor of nodes[j], or the same node
                if i != j and rank_depth[ancestor] == lcs_rank_depth[i, j]:
                    lcs_depth[i, j] = lcs_depth[j, i] = graph.max_depth[ancestor] + 1
                    lengths[i, j] = lengths[j, i] = path_to[ancestor][j]
    out = 1.0 - 2.0 * lcs_depth / (lengths + 2.0 * lcs_depth)
    np.fill_diagonal(out, 0.0)
    return out


def wnid_distances(wnids: Sequence[str], dict_dir: str | os.PathLike, measure: str = "path", *,
                   lcs: str = "min_depth") -> np.ndarray:
    """:func:`tree_distances` between ImageNet-style wnids over WordNet 3.0 in ``dict_dir``, with
    nltk's synset names for Wu-Palmer ties (needs index.noun too)."""
    offsets = [wnid_to_offset(w) for w in wnids]
    hypernyms = read_hypernyms(dict_dir)
    unknown = [w for w, o in zip(wnids, offsets) if o not in hypernyms]
    if unknown:
        raise ValueError(f"{len(unknown)} wnid(s) are not noun synsets of {_database_file(dict_dir, 'data.noun')}: "
                         f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}")
    names = read_synset_names(dict_dir) if measure == "wup" else None
    return tree_distances(offsets, hypernyms, measure, names=names, lcs=lcs)


# --------------------------------------------------------------------------------------
# An image set's own hierarchy
# --------------------------------------------------------------------------------------


def read_hierarchy(path: str | os.PathLike) -> dict[str, list[str]]:
    """A hierarchy TSV (header with columns ``child`` and ``parent``; one edge a row) as ``name -> [parents]``.

    Every name is a key (roots map to ``[]``).  Blank lines and lines starting with ``#``
    are skipped; repeated edges count once; other columns are ignored.  ValueError for a
    missing column, a row with empty or missing cells, or a cycle (named with its lines).
    """
    path = Path(path)
    parents: dict[str, list[str]] = {}
    edge_line: dict[tuple[str, str], int] = {}
    header: list[str] | None = None
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in line.split("\t")]
            if header is None:
                header = cells
                if "child" not in header or "parent" not in header:
                    raise ValueError(f"{path}, line {lineno}: the header needs tab-separated columns 'child' and "
                                     f"'parent', found {cells}")
                ci, pi = header.index("child"), header.index("parent")
                continue
            if len(cells) <= max(ci, pi) or not cells[ci] or not cells[pi]:
                raise ValueError(f"{path}, line {lineno}: expected a child and a parent (tab-separated), got {line!r}")
            child, parent = cells[ci], cells[pi]
            if child == parent:
                raise ValueError(f"{path}, line {lineno}: the hierarchy has a cycle: {child!r} is its own parent")
            edges = parents.setdefault(child, [])
            parents.setdefault(parent, [])
            if parent not in edges:
                edges.append(parent)
                edge_line[child, parent] = lineno
    if header is None:
        raise ValueError(f"{path}: empty hierarchy file (expected a header with columns 'child' and 'parent')")
    _find_cycle(path, parents, edge_line)
    return parents


def _find_cycle(path: Path, parents: Mapping[str, Sequence[str]], edge_line: Mapping[tuple[str, str], int]) -> None:
    done: set[str] = set()
    for start in parents:
        if start in done:
            continue
        stack = [(start, iter(parents[start]))]
        on_path = {start: 0}
        trail = [start]
        while stack:
            node, pending = stack[-1]
            for p in pending:
                if p in done:
                    continue
                if p in on_path:
                    cycle = [*trail[on_path[p]:], p]
                    lines = ", ".join(str(edge_line[c, q]) for c, q in itertools.pairwise(cycle))
                    raise ValueError(f"{path}: the hierarchy has a cycle: {' -> '.join(cycle)} "
                                     f"(child -> parent; lines {lines})")
                on_path[p] = len(trail)
                trail.append(p)
                stack.append((p, iter(parents[p])))
                break
            else:
                stack.pop()
                trail.pop()
                del on_path[node]
                done.add(node)


def read_hierarchy_file(path: str | os.PathLike, concepts: Sequence[str], measure: str = "path", *,
                        lcs: str = "min_depth") -> np.ndarray:
    """Distances between ``concepts`` (names in the file, usually its leaves) over a hierarchy TSV.

    Same measures as :func:`tree_distances` (Wu-Palmer ties broken by name); a forest is
    joined by a virtual root.  ValueError naming the concepts the file does not have.
    """
    parents = read_hierarchy(path)
    missing = [c for c in dict.fromkeys(concepts) if c not in parents]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:20])
        raise ValueError(f"{path} does not cover {len(missing)} of the {len(set(concepts))} concepts: {shown}"
                         f"{' ...' if len(missing) > 20 else ''}")
    return tree_distances(list(concepts), parents, measure, lcs=lcs)
