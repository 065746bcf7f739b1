"""wordlens.wordnet: WordNet 3.0's files, hypernym DAG distances, hierarchy files.

The fixture tests/data/wordnet/dict/ is a small noun database in WordNet's real format
(license header, byte offsets equal to the lines' positions, hexadecimal w_cnt, index.noun);
it is made by ``make_database`` below: ``python tests/test_wordnet.py`` rewrites it.
The tests on Debian's real files fetch them once per session and skip where apt-get,
dpkg or the package are not available; those comparing with nltk skip without nltk.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from wordlens import wordnet as wn

FIXTURE = Path(__file__).parent / "data" / "wordnet" / "dict"
CLASSES = Path(__file__).resolve().parents[1] / "data" / "imagenet_classes.tsv"

LICENSE = [
    "This software and database is being provided to you, the LICENSEE, by",
    "Princeton University under the following license.  By obtaining, using",
    "and/or copying this software and database, you agree that you have",
    "read, understood, and will comply with these terms and conditions.:",
    "",
    "Permission to use, copy, modify and distribute this software and",
    "database and its documentation for any purpose and without fee or",
    "royalty is hereby granted, provided that you agree to comply with",
    "the following copyright notice and statements, including the disclaimer,",
    "and that the same appear on ALL copies of the software, database and",
    "documentation, including modifications that you make for internal",
    "use or for distribution.",
    "",
    "WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.",
    "",
    'THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON',
    "UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR",
    "IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON",
    "UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-",
    "ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE",
    "OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT",
    "INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR",
    "OTHER RIGHTS.",
    "",
    "The name of Princeton University or Princeton may not be used in",
    "advertising or publicity pertaining to distribution of the software",
    "and/or database.  Title to copyright in this software, database and",
    "any associated documentation shall at all times remain with",
    "Princeton University and LICENSEE agrees to preserve same.",
]

# key, lex_filenum, words, hypernyms (@), instance hypernyms (@i), other pointers, gloss.
# dog, house_cat and ambulance have two hypernyms, Lassie an instance hypernym; domestic_animal
# comes before carnivore in the file, so its offset is smaller while its nltk name sorts after.
# ambulance's second hypernym is a shortcut: its path to wheeled_vehicle through vehicle (2)
# is shorter than the way up (3), which nltk's Wu-Palmer uses.
SYNSETS = [
    ("entity", 3, ["entity"], [], [], [], "that which is perceived or known to exist"),
    ("physical_entity", 3, ["physical_entity"], ["entity"], [], [], "an entity that has physical existence"),
    ("abstraction", 3, ["abstraction", "abstract_entity"], ["entity"], [], [], "a general concept"),
    ("object", 3, ["object", "physical_object"], ["physical_entity"], [], [], "a tangible and visible entity"),
    ("animal", 5, ["animal", "animate_being", "beast", "brute", "creature", "fauna"], ["object"], [], [],
     "a living organism that moves voluntarily"),
    ("domestic_animal", 5, ["domestic_animal", "domesticated_animal"], ["animal"], [], [],
     "any of various animals domesticated to live with people"),
    ("carnivore", 5, ["carnivore"], ["animal"], [], [], "a terrestrial or aquatic flesh-eating mammal"),
    ("canine", 5, ["canine", "canid"], ["carnivore"], [], [], "one of the dogs, wolves, jackals and foxes"),
    ("feline", 5, ["feline", "felid"], ["carnivore"], [], [], "any of various lithe-bodied roundheaded mammals"),
    ("dog", 5, ["dog", "domestic_dog", "Canis_familiaris"], ["canine", "domestic_animal"], [], [],
     'a member of the genus Canis; "the dog barked all night"'),
    ("puppy", 5, ["puppy"], ["dog"], [], [], "a young dog"),
    ("cat", 5, ["cat", "true_cat"], ["feline"], [], [], "feline mammal usually having thick soft fur"),
    ("house_cat", 5, ["house_cat", "housecat", "domestic_cat", "Felis_domesticus"], ["cat", "domestic_animal"],
     [], [], "any domesticated member of the genus Felis"),
    ("Lassie", 5, ["Lassie"], [], ["dog"], [], "a fictional collie"),
    ("person", 18, ["person", "individual", "someone", "somebody", "mortal", "soul"], ["object"], [], [],
     "a human being"),
    ("dog_man", 18, ["dog"], ["person"], [], [], "informal term for a man"),
    ("vehicle", 6, ["vehicle"], ["object"], [], [], "a conveyance that transports people or objects"),
    ("wheeled_vehicle", 6, ["wheeled_vehicle"], ["vehicle"], [], [], "a vehicle that moves on wheels"),
    ("motor_vehicle", 6, ["motor_vehicle", "automotive_vehicle"], ["wheeled_vehicle"], [], [],
     "a self-propelled wheeled vehicle"),
    ("car", 6, ["car", "auto", "automobile", "machine", "motorcar"], ["motor_vehicle"], [], [("%p", "wheel")],
     "a motor vehicle with four wheels"),
    ("ambulance", 6, ["ambulance"], ["car", "vehicle"], [], [], "a vehicle that takes people to hospital"),
    ("bicycle", 6, ["bicycle", "bike", "wheel", "cycle"], ["wheeled_vehicle"], [], [],
     "a wheeled vehicle that has two wheels"),
    ("wheel", 6, ["wheel"], ["object"], [], [("#p", "car")], "a simple machine consisting of a circular frame"),
]


def header() -> bytes:
    return "".join(f"  {i} {text}  \n" for i, text in enumerate(LICENSE, start=1)).encode()


def make_database(synsets=SYNSETS) -> tuple[bytes, bytes, dict[str, int]]:
    """(data.noun, index.noun, offset of each key) in WordNet 3.0's format for the synsets."""
    children: dict[str, list[tuple[str, str]]] = {key: [] for key, *_ in synsets}
    for key, _lex, _words, hyper, inst, _other, _gloss in synsets:
        for h in hyper:
            children[h].append(("~", key))
        for h in inst:
            children[h].append(("~i", key))

    def pointers(entry, offsets):
        key, _lex, _words, hyper, inst, other, _gloss = entry
        ptrs = [("@", h) for h in hyper] + [("@i", h) for h in inst] + list(other) + children[key]
        return ptrs, " ".join(f"{sym} {offsets[target]:08d} n 0000" for sym, target in ptrs)

    def line(entry, offsets):
        key, lex, words, _hyper, _inst, _other, gloss = entry
        ptrs, text = pointers(entry, offsets)
        lemmas = " ".join(f"{w} 0" for w in words)
        return f"{offsets[key]:08d} {lex:02d} n {len(words):02x} {lemmas} {len(ptrs):03d} {text} | {gloss}  \n".replace(
            " 000  | ", " 000 | ").encode()

    offsets = dict.fromkeys(children, 0)  # every offset is 8 digits: the lines' lengths do not depend on them
    position = len(header())
    for entry in synsets:
        offsets[entry[0]] = position
        position += len(line(entry, offsets))
    data = header() + b"".join(line(entry, offsets) for entry in synsets)

    senses: dict[str, list[str]] = {}
    symbols: dict[str, list[str]] = {}
    for entry in synsets:
        ptrs, _ = pointers(entry, offsets)
        for word in entry[2]:
            lemma = word.lower()
            senses.setdefault(lemma, []).append(entry[0])
            symbols[lemma] = list(dict.fromkeys(symbols.get(lemma, []) + [s for s, _ in ptrs]))
    rows = []
    for lemma in sorted(senses):
        n, syms = len(senses[lemma]), symbols[lemma]
        targets = " ".join(f"{offsets[k]:08d}" for k in senses[lemma])
        rows.append(f"{lemma} n {n} {len(syms)} {' '.join(syms + [''])}{n} 0 {targets}  \n")
    return data, header() + "".join(rows).encode(), offsets


def write_database(folder: Path, synsets=SYNSETS) -> dict[str, int]:
    data, index, offsets = make_database(synsets)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.noun").write_bytes(data)
    (folder / "index.noun").write_bytes(index)
    return offsets


OFF = make_database()[2]


@pytest.fixture(scope="module")
def hyp():
    return wn.read_hypernyms(FIXTURE)


def dist(a, b, hypernyms, measure="path", names=None):
    return wn.tree_distances([OFF[a], OFF[b]], hypernyms, measure, names=names)[0, 1]


# --------------------------------------------------------------------------------------
# The fixture and the parser
# --------------------------------------------------------------------------------------


def test_committed_fixture_is_the_generated_one():
    data, index, _ = make_database()
    assert (FIXTURE / "data.noun").read_bytes() == data, "regenerate: python tests/test_wordnet.py"
    assert (FIXTURE / "index.noun").read_bytes() == index, "regenerate: python tests/test_wordnet.py"


def test_fixture_is_in_wordnet_format():
    data = (FIXTURE / "data.noun").read_bytes()
    assert data.startswith(b"  1 This software and database")
    for key, offset in OFF.items():  # the offset field is the line's byte position
        assert data[offset:offset + 9] == f"{offset:08d} ".encode(), key
    assert data[OFF["dog"]:].split(b"\n")[0].startswith(
        f"{OFF['dog']:08d} 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 004 @ {OFF['canine']:08d} n 0000 ".encode())


def test_read_hypernyms(hyp):
    assert set(hyp) == set(OFF.values())
    assert hyp[OFF["entity"]] == []
    assert hyp[OFF["dog"]] == [OFF["canine"], OFF["domestic_animal"]]  # two hypernyms, file order
    assert hyp[OFF["Lassie"]] == [OFF["dog"]]  # an instance hypernym (@i)
    assert hyp[OFF["car"]] == [OFF["motor_vehicle"]]  # the part pointer %p is not a hypernym
    assert hyp[OFF["ambulance"]] == [OFF["car"], OFF["vehicle"]]
    assert hyp[OFF["wheel"]] == [OFF["object"]]


def test_lemma_and_synset_names():
    lemmas = wn.read_lemma_names(FIXTURE)
    assert lemmas[OFF["dog"]] == "dog" and lemmas[OFF["Lassie"]] == "Lassie"
    assert wn.read_lemma_names(FIXTURE, all_words=True)[OFF["house_cat"]] == [
        "house_cat", "housecat", "domestic_cat", "Felis_domesticus"]
    names = wn.read_synset_names(FIXTURE)
    assert names[OFF["dog"]] == "dog.n.01" and names[OFF["dog_man"]] == "dog.n.02"
    assert names[OFF["Lassie"]] == "lassie.n.01" and names[OFF["domestic_animal"]] == "domestic_animal.n.01"


def test_hex_word_count(tmp_path):
    words = [f"w{i}" for i in range(11)]  # w_cnt 0b
    offsets = write_database(tmp_path, [SYNSETS[0], ("many", 3, words, ["entity"], [], [], "eleven words")])
    assert b" n 0b w0 0 w1 0" in (tmp_path / "data.noun").read_bytes()
    assert wn.read_hypernyms(tmp_path)[offsets["many"]] == [offsets["entity"]]
    assert wn.read_lemma_names(tmp_path, all_words=True)[offsets["many"]] == words


def tampered(tmp_path: Path, key: str, old: bytes, new: bytes) -> Path:
    data, _index, offsets = make_database()
    end = data.index(b"\n", offsets[key])
    line = data[offsets[key]:end]
    assert old in line
    (tmp_path / "data.noun").write_bytes(data[:offsets[key]] + line.replace(old, new, 1) + data[end:])
    return tmp_path


@pytest.mark.parametrize(("key", "old", "new", "message"), [
    ("dog", f"{OFF['dog']:08d} 05".encode(), f"{OFF['dog'] + 1:08d} 05".encode(), "differs from the line's byte"),
    ("dog", b" n 03 dog", b" n zz dog", "w_cnt 'zz' is not a hexadecimal"),
    ("dog", b" n 03 dog", b" v 03 dog", "ss_type 'v' is not 'n'"),
    ("dog", b" 004 @", b" 005 @", "p_cnt 5 needs 20 pointer fields"),
    ("dog", b" | a member", b" a member", "no '|' before the gloss"),
    ("dog", f"@ {OFF['canine']:08d}".encode(), b"@ 00000042", "hypernym 00000042 is not a synset offset"),
    ("dog", f"@ {OFF['canine']:08d} n".encode(), f"@ {OFF['canine']:08d} v".encode(), "hypernym pointer"),
])
def test_malformed_data_noun(tmp_path, key, old, new, message):
    path = tampered(tmp_path, key, old, new)
    line = 30 + [k for k, *_ in SYNSETS].index(key)
    with pytest.raises(ValueError, match=message) as err:
        wn.read_hypernyms(path)
    assert str(path / "data.noun") in str(err.value)
    if "hypernym 00000042" not in message:
        assert f"line {line} " in str(err.value)


def test_missing_or_empty_data_noun(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch_wordnet"):
        wn.read_hypernyms(tmp_path)
    (tmp_path / "data.noun").write_bytes(header())
    with pytest.raises(ValueError, match="holds no synsets"):
        wn.read_hypernyms(tmp_path)


@pytest.mark.parametrize("bad", ["n1440764", "N01440764", "01440764", " n01440764", "n014407640", 1440764, None])
def test_wnid_to_offset(bad):
    assert wn.wnid_to_offset("n01440764") == 1440764
    assert wn.offset_to_wnid(1440764) == "n01440764"
    with pytest.raises(ValueError, match="not a WordNet noun id") as err:
        wn.wnid_to_offset(bad)
    assert repr(bad) in str(err.value)


# --------------------------------------------------------------------------------------
# Depths and distances, by hand
# --------------------------------------------------------------------------------------


def test_depths(hyp):
    expect = {"entity": (0, 0), "object": (2, 2), "dog": (5, 6), "puppy": (6, 7), "house_cat": (5, 7),
              "Lassie": (6, 7), "car": (6, 6), "ambulance": (4, 7), "bicycle": (5, 5)}
    for key, (low, high) in expect.items():
        assert (wn.synset_depth(OFF[key], hyp), wn.synset_depth(OFF[key], hyp, "max")) == (low, high), key
    with pytest.raises(ValueError, match="kind must be"):
        wn.synset_depth(OFF["dog"], hyp, "mean")
    with pytest.raises(ValueError, match="not in the hypernym table: 00000042"):
        wn.synset_depth(42, hyp)


def test_lowest_common_hypernyms(hyp):
    names = wn.read_synset_names(FIXTURE)
    assert wn.lowest_common_hypernyms(OFF["dog"], OFF["cat"], hyp) == [OFF["carnivore"]]
    assert wn.lowest_common_hypernyms(OFF["dog"], OFF["car"], hyp) == [OFF["object"]]
    # dog / house_cat: domestic_animal and carnivore, both min_depth 4 (and max_depth 4)
    both = wn.lowest_common_hypernyms(OFF["dog"], OFF["house_cat"], hyp, use_min_depth=True, names=names)
    assert both == [OFF["carnivore"], OFF["domestic_animal"]]  # by name, as nltk sorts
    assert wn.lowest_common_hypernyms(OFF["puppy"], OFF["dog"], hyp) == [OFF["dog"]]  # max_depth 6 beats canine's 5
    assert wn.lowest_common_hypernyms(OFF["ambulance"], OFF["bicycle"], hyp) == [OFF["wheeled_vehicle"]]
    assert names[OFF["bicycle"]] == "bicycle.n.01" and names[OFF["wheel"]] == "wheel.n.02"  # bicycle is "wheel" 1


PATHS = [("dog", "cat", 4), ("dog", "house_cat", 2), ("puppy", "house_cat", 3), ("dog", "car", 3 + 4),
         ("Lassie", "puppy", 2), ("dog", "dog_man", 5), ("cat", "wheel", 5), ("dog", "puppy", 1),
         ("entity", "puppy", 6), ("ambulance", "bicycle", 1 + 2), ("ambulance", "car", 1), ("car", "bicycle", 3)]


@pytest.mark.parametrize(("a", "b", "expected"), PATHS)
def test_path_distance(hyp, a, b, expected):
    assert dist(a, b, hyp) == expected == dist(b, a, hyp)


WUP = [  # (a, b, D = max_depth(lcs) + 1, d(a, lcs) + d(b, lcs)) with nltk's LCS (deepest min_depth, then name)
    ("dog", "cat", 5, 4),  # carnivore
    ("dog", "house_cat", 5, 2 + 3),  # carnivore.n.01 wins the tie with domestic_animal.n.01 by name
    ("dog", "car", 3, 3 + 4),  # object
    ("dog", "dog_man", 3, 3 + 2),
    ("cat", "car", 3, 4 + 4),
    ("dog", "puppy", 7, 0 + 1),  # dog itself, tied with canine (min_depth 5): a or b itself is preferred
    ("Lassie", "puppy", 6, 2 + 2),  # canine.n.01 beats dog.n.01 (both min_depth 5) by name
    ("entity", "car", 1, 6),
    ("ambulance", "bicycle", 5, 2 + 1),  # wheeled_vehicle; ambulance -> vehicle <- wheeled_vehicle is 2, up is 3
    ("ambulance", "car", 7, 1 + 0),
]


@pytest.mark.parametrize(("a", "b", "depth", "length"), WUP)
def test_wup_distance(hyp, a, b, depth, length):
    names = wn.read_synset_names(FIXTURE)
    expected = 1 - 2 * depth / (length + 2 * depth)
    assert dist(a, b, hyp, "wup", names) == pytest.approx(expected, abs=1e-12)
    assert dist(b, a, hyp, "wup", names) == pytest.approx(expected, abs=1e-12)


def test_wup_tie_break_without_names(hyp):
    # by offset, domestic_animal (smaller offset) wins: D 5, lengths 1 + 1
    assert dist("dog", "house_cat", hyp, "wup") == pytest.approx(1 - 10 / 12)


def test_wup_subsumer_by_max_depth(hyp):
    names = wn.read_synset_names(FIXTURE)
    # Lassie / puppy: dog (max_depth 6) instead of canine (5): D 7, lengths 1 + 1
    assert dist("Lassie", "puppy", hyp, "wup", names) == pytest.approx(1 - 12 / 16)
    d = wn.tree_distances([OFF["Lassie"], OFF["puppy"]], hyp, "wup", names=names, lcs="max_depth")
    assert d[0, 1] == pytest.approx(1 - 14 / 16)
    with pytest.raises(ValueError, match="lcs must be"):
        wn.tree_distances([OFF["dog"]], hyp, "wup", lcs="deepest")


def test_distance_matrix(hyp):
    keys = ["dog", "cat", "puppy", "car", "dog", "Lassie", "entity"]
    for measure in wn.MEASURES:
        d = wn.tree_distances([OFF[k] for k in keys], hyp, measure, names=wn.read_synset_names(FIXTURE))
        assert d.shape == (7, 7) and d.dtype == np.float64
        assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0) and d[0, 4] == 0  # a repeated node
        assert np.all(d[~np.eye(7, dtype=bool) & (np.array(keys)[:, None] != np.array(keys)[None, :])] > 0)
    assert wn.tree_distances([], hyp).shape == (0, 0)
    with pytest.raises(ValueError, match="measure must be one of"):
        wn.tree_distances([OFF["dog"]], hyp, "lch")
    with pytest.raises(ValueError, match=r"2 node\(s\) not in the hypernym table: 00000007, 00000009"):
        wn.tree_distances([OFF["dog"], 7, 9, 7], hyp)


def test_cycle_in_hypernyms():
    with pytest.raises(ValueError, match="cycle: 00000002 -> 00000003 -> 00000002"):
        wn.tree_distances([1, 4], {1: [2], 2: [3], 3: [2], 4: [3]}, "wup")


def test_wnid_distances():
    wnids = [wn.offset_to_wnid(OFF["dog"]), wn.offset_to_wnid(OFF["house_cat"])]
    assert wn.wnid_distances(wnids, FIXTURE)[0, 1] == 2
    assert wn.wnid_distances(wnids, FIXTURE, "wup")[0, 1] == pytest.approx(1 / 3)  # nltk's names break the tie
    with pytest.raises(ValueError, match="n00000042"):
        wn.wnid_distances([*wnids, "n00000042"], FIXTURE)


# --------------------------------------------------------------------------------------
# nltk's WordNetCorpusReader on the fixture (only nltk's own files added, in a temporary copy)
# --------------------------------------------------------------------------------------

LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food",
    "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]


def nltk_reader(dict_dir: Path, tmp: Path, monkeypatch):
    """nltk's reader over a copy of ``dict_dir`` with the files nltk wants and wordnet-base lacks."""
    nltk = pytest.importorskip("nltk")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder = tmp / "nltk-wordnet"
    folder.mkdir()
    for f in dict_dir.iterdir():
        shutil.copyfile(f, folder / f.name)
    pos = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    (folder / "lexnames").write_text("".join(f"{i:02d}\t{n}\t{pos[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES)))
    for name in [f"{kind}.{p}" for kind in ("data", "index") for p in ("noun", "verb", "adj", "adv")] + [
            f"{p}.exc" for p in ("noun", "verb", "adj", "adv")]:
        (folder / name).touch(exist_ok=True)
    monkeypatch.setattr(nltk.data, "path", [str(tmp), *nltk.data.path])  # nltk reads only below its data paths
    monkeypatch.setattr(WordNetCorpusReader, "map_wn", lambda self, version="wordnet": None)  # needs index.sense
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WordNetCorpusReader(str(folder), None)


def nltk_wup(s, t):
    """nltk's Wu-Palmer with the ancestor, if one of the two is, as ``self``: nltk's LCS then prefers it."""
    return t.wup_similarity(s) if t in s.common_hypernyms(t) else s.wup_similarity(t)


def test_against_nltk_on_the_fixture(tmp_path, monkeypatch, hyp):
    reader = nltk_reader(FIXTURE, tmp_path, monkeypatch)
    offsets = sorted(OFF.values())
    names = wn.read_synset_names(FIXTURE)
    synsets = [reader.synset_from_pos_and_offset("n", o) for o in offsets]
    assert [s.name() for s in synsets] == [names[o] for o in offsets]
    path = wn.tree_distances(offsets, hyp, "path")
    wup = wn.tree_distances(offsets, hyp, "wup", names=names)
    for i, s in enumerate(synsets):
        depths = (wn.synset_depth(offsets[i], hyp), wn.synset_depth(offsets[i], hyp, "max"))
        assert (s.min_depth(), s.max_depth()) == depths, s
        for j, t in enumerate(synsets):
            if i != j:
                assert path[i, j] == s.shortest_path_distance(t), (s, t)
                assert wup[i, j] == pytest.approx(1 - nltk_wup(s, t), abs=1e-12), (s, t)


# --------------------------------------------------------------------------------------
# Hierarchy files
# --------------------------------------------------------------------------------------


def hierarchy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hierarchy.tsv"
    path.write_text(text)
    return path


FOREST = "child\tparent\nanimal\tliving\nplant\tliving\ndog\tanimal\ncat\tanimal\noak\tplant\nstone\tnonliving\n"


def test_hierarchy_distances(tmp_path):
    path = hierarchy(tmp_path, "# a forest: living and nonliving meet at a virtual root\n" + FOREST + "dog\tanimal\n")
    assert wn.read_hierarchy(path) == {"living": [], "animal": ["living"], "plant": ["living"], "dog": ["animal"],
                                       "cat": ["animal"], "oak": ["plant"], "nonliving": [], "stone": ["nonliving"]}
    concepts = ["dog", "cat", "oak", "stone"]
    p = wn.read_hierarchy_file(path, concepts)
    assert p.tolist() == [[0, 2, 4, 5], [2, 0, 4, 5], [4, 4, 0, 5], [5, 5, 5, 0]]
    u = wn.read_hierarchy_file(path, concepts, measure="wup")
    # depths with the virtual root at 0: living 1, animal 2, dog 3, stone 2
    assert u[0, 1] == pytest.approx(1 - 6 / 8) and u[0, 2] == pytest.approx(1 - 4 / 8)
    assert u[0, 3] == pytest.approx(1 - 2 / 7)
    rooted = hierarchy(tmp_path, FOREST + "living\tthing\nnonliving\tthing\n")  # the same with a real root
    assert np.array_equal(wn.read_hierarchy_file(rooted, concepts), p)
    assert np.allclose(wn.read_hierarchy_file(rooted, concepts, "wup"), u)


def test_hierarchy_dag_and_extra_columns(tmp_path):
    path = hierarchy(tmp_path, "parent\tchild\tnote\r\nmammal\tbat\tx\r\nflyer\tbat\t\r\nanimal\tmammal\t\r\n"
                               "animal\tflyer\t\r\nflyer\tcrow\t\r\n")
    assert wn.read_hierarchy(path)["bat"] == ["mammal", "flyer"]
    assert wn.read_hierarchy_file(path, ["bat", "crow"])[0, 1] == 2


@pytest.mark.parametrize(("text", "message"), [
    ("child\tparent\na\tb\nb\tc\nc\ta\n", r"cycle: a -> b -> c -> a \(child -> parent; lines 2, 3, 4\)"),
    ("child\tparent\na\ta\n", "line 2: the hierarchy has a cycle: 'a' is its own parent"),
    ("child\tsuper\na\tb\n", "line 1: the header needs tab-separated columns 'child' and 'parent'"),
    ("child\tparent\na\tb\nc\n", "line 3: expected a child and a parent"),
    ("child\tparent\na\t\n", "line 2: expected a child and a parent"),
    ("\n# nothing\n", "empty hierarchy file"),
])
def test_hierarchy_errors(tmp_path, text, message):
    path = hierarchy(tmp_path, text)
    with pytest.raises(ValueError, match=message) as err:
        wn.read_hierarchy_file(path, ["a"])
    assert str(path) in str(err.value)


def test_hierarchy_missing_concepts(tmp_path):
    path = hierarchy(tmp_path, FOREST)
    with pytest.raises(ValueError, match=r"does not cover 2 of the 3 concepts: 'wolf', 'rose'") as err:
        wn.read_hierarchy_file(path, ["dog", "wolf", "rose"])
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------
# fetch_wordnet
# --------------------------------------------------------------------------------------


def test_fetch_uses_files_already_there(tmp_path):
    write_database(tmp_path / "dict")
    assert wn.fetch_wordnet(tmp_path, system_dir=tmp_path / "none") == tmp_path / "dict"
    write_database(tmp_path / "flat")
    assert wn.fetch_wordnet(tmp_path / "flat", system_dir=tmp_path / "none") == tmp_path / "flat"


def test_fetch_copies_a_system_copy(tmp_path):
    root = tmp_path / "root"
    (root / "dict").mkdir(parents=True)
    (root / "dict" / "data.noun").write_text("partial")  # an incomplete folder is replaced
    assert wn.fetch_wordnet(root, system_dir=FIXTURE) == root / "dict"
    assert (root / "dict" / "data.noun").read_bytes() == (FIXTURE / "data.noun").read_bytes()
    assert sorted(p.name for p in root.iterdir()) == ["dict"]  # no temporary folder left


def test_fetch_refuses_another_wordnet_version(tmp_path):
    write_database(tmp_path / "dict")
    data = tmp_path / "dict" / "data.noun"
    data.write_bytes(data.read_bytes().replace(b"WordNet 3.0 Copyright", b"WordNet 3.1 Copyright"))
    with pytest.raises(ValueError, match="is WordNet 3.1, not 3.0"):
        wn.fetch_wordnet(tmp_path, system_dir=tmp_path / "none")


def test_fetch_error_names_the_attempts(tmp_path, monkeypatch):
    monkeypatch.setattr(wn.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError) as err:
        wn.fetch_wordnet(tmp_path / "root", system_dir=tmp_path / "none")
    message = str(err.value)
    for part in [str(tmp_path / "root" / "dict"), str(tmp_path / "none"), "apt-get or dpkg not found",
                 "wordnet-base", "WordNet-3.0.tar.gz", "data.noun and index.noun"]:
        assert part in message

    def failing(cmd, **kwargs):
        raise subprocess.CalledProcessError(100, cmd, stderr="E: Unable to locate package wordnet-base")

    monkeypatch.setattr(wn.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(wn.subprocess, "run", failing)
    with pytest.raises(FileNotFoundError, match="apt-get download wordnet-base \\+ dpkg -x: E: Unable to locate"):
        wn.fetch_wordnet(tmp_path / "root", system_dir=tmp_path / "none")
    assert not (tmp_path / "root" / "dict").exists()


# --------------------------------------------------------------------------------------
# Debian's real WordNet 3.0 (fetched once for this module)
# --------------------------------------------------------------------------------------

DOG, CAT, CANINE, DOMESTIC_ANIMAL, FELINE, CARNIVORE = 2084071, 2121620, 2083346, 1317541, 2120997, 2075296


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not (shutil.which("apt-get") and shutil.which("dpkg")) and not wn._has_wordnet(wn.DEBIAN_WORDNET):
        pytest.skip("neither /usr/share/wordnet nor apt-get and dpkg to fetch Debian's wordnet-base")
    try:
        return wn.fetch_wordnet(tmp_path_factory.mktemp("wordnet"))
    except FileNotFoundError as err:
        pytest.skip(f"WordNet 3.0 not obtainable here: {err}")


def test_real_wordnet(real):
    assert real.name == "dict" and (real / "data.noun").stat().st_size == 15300280
    hyp = wn.read_hypernyms(real)
    assert len(hyp) == 82115  # WordNet 3.0's noun synsets
    assert [o for o, parents in hyp.items() if not parents] == [1740]  # entity.n.01, the only root
    assert hyp[DOG] == [CANINE, DOMESTIC_ANIMAL] and hyp[CAT] == [FELINE]
    assert hyp[CANINE] == [CARNIVORE] and hyp[FELINE] == [CARNIVORE]
    # dog -> domestic_animal -> animal -> organism -> living_thing -> whole -> object -> physical_entity -> entity
    assert wn.synset_depth(DOG, hyp) == 8 and wn.synset_depth(DOG, hyp, "max") == 13  # the longer one via canine
    assert wn.read_lemma_names(real)[DOG] == "dog"
    names = wn.read_synset_names(real)
    assert names[DOG] == "dog.n.01" and names[CAT] == "cat.n.01"
    assert wn.lowest_common_hypernyms(DOG, CAT, hyp) == [CARNIVORE]
    assert wn.tree_distances([DOG, CAT], hyp)[0, 1] == 4  # dog -> canine -> carnivore <- feline <- cat
    # carnivore's max_depth is 11, so D = 12: wup = 24 / (4 + 24), nltk's 0.857142...
    assert wn.tree_distances([DOG, CAT], hyp, "wup", names=names)[0, 1] == pytest.approx(1 - 24 / 28)


def test_real_wup_subsumers_of_dog_breeds(real):
    terriers = ["n02093256", "n02093647"]  # Staffordshire bullterrier, Bedlington terrier
    nltk_like = wn.wnid_distances(terriers, real, "wup")[0, 1]
    deepest = wn.wnid_distances(terriers, real, "wup", lcs="max_depth")[0, 1]
    hyp, names = wn.read_hypernyms(real), wn.read_synset_names(real)
    pair = [wn.wnid_to_offset(w) for w in terriers]
    assert [names[o] for o in wn.lowest_common_hypernyms(*pair, hyp, use_min_depth=True, names=names)] == [
        "canine.n.02"]  # min_depth 12, deeper than dog.n.01's 8 (through domestic_animal.n.01)
    assert [names[o] for o in wn.lowest_common_hypernyms(*pair, hyp, names=names)] == ["terrier.n.01"]
    assert deepest < nltk_like


def test_real_imagenet_classes(real):
    import pandas as pd

    wnids = pd.read_csv(CLASSES, sep="\t")["wnid"].tolist()
    assert len(wnids) == 1000
    wn.read_hypernyms(real)  # parse once (cached), then time the distances alone
    for measure in wn.MEASURES:
        start = time.perf_counter()
        d = wn.wnid_distances(wnids, real, measure)
        assert time.perf_counter() - start < 15
        assert d.shape == (1000, 1000) and np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
        off_diagonal = d[~np.eye(1000, dtype=bool)]
        assert off_diagonal.min() > 0
        if measure == "path":
            assert np.array_equal(d, np.round(d)) and d.max() < 40
        else:
            assert off_diagonal.max() < 1


def test_real_against_nltk(real, tmp_path, monkeypatch):
    import pandas as pd

    reader = nltk_reader(real, tmp_path, monkeypatch)
    wnids = pd.read_csv(CLASSES, sep="\t")["wnid"].tolist()[::25]  # 40 classes across the list
    offsets = [wn.wnid_to_offset(w) for w in wnids] + [DOG, CAT]
    hyp, names = wn.read_hypernyms(real), wn.read_synset_names(real)
    path = wn.tree_distances(offsets, hyp, "path")
    wup = wn.tree_distances(offsets, hyp, "wup", names=names)
    synsets = [reader.synset_from_pos_and_offset("n", o) for o in offsets]
    assert synsets[-2].shortest_path_distance(synsets[-1]) == 4
    for i, s in enumerate(synsets):
        for j in range(i + 1, len(synsets)):
            assert path[i, j] == s.shortest_path_distance(synsets[j])
            assert wup[i, j] == pytest.approx(1 - s.wup_similarity(synsets[j]), abs=1e-12)


if __name__ == "__main__":
    write_database(FIXTURE)
    print(f"wrote {FIXTURE}/data.noun and index.noun")
