#!/usr/bin/env python3
"""Generate data/imagenet_classes.tsv: the 1000 ILSVRC-2012 classes with their WordNet synonyms.

Input 1, the ordered class list: a text file with the 1000 wnids, one per line, in the
standard class-index order (sorted wnids, as torchvision's and Caffe's pretrained
models use).  The shipped file was made from timm's ``timm/data/_info/imagenet_synsets.txt``
(pip download timm; unzip the wheel); the ILSVRC-2012 devkit's ``meta.mat`` gives the same list.

Input 2, WordNet 3.0's ``data.noun`` (Debian/Ubuntu: package wordnet-base, which
``apt-get download wordnet-base && dpkg -x wordnet-base_*.deb wn`` unpacks without root
into ``wn/usr/share/wordnet/data.noun``).  A wnid ``n02125311`` is the noun synset at
byte offset 02125311 of data.noun; its line lists the synset's words in WordNet's order
("cougar puma catamount mountain_lion painter panther Felis_concolor").

Output: tab-separated ``class_index``, ``wnid``, ``synonyms`` (comma-separated, words as
in WordNet with ``_`` turned into spaces), e.g.
``286	n02125311	cougar, puma, catamount, mountain lion, painter, panther, Felis concolor``.

Usage: python data/make_imagenet_classes.py --wnids imagenet_synsets.txt \\
           --wordnet /usr/share/wordnet/data.noun --out data/imagenet_classes.tsv
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def synset_words(data_noun: bytes, offset: int) -> list[str]:
    """The words of the noun synset at ``offset`` of WordNet's data.noun."""
    end = data_noun.index(b"\n", offset)
    line = data_noun[offset:end].decode("utf-8")
    fields = line.split(" ")
    if int(fields[0]) != offset or fields[2] != "n":
        raise ValueError(f"data.noun has no noun synset at offset {offset:08d}: {line[:60]!r}")
    count = int(fields[3], 16)  # w_cnt is hexadecimal
    words = fields[4 : 4 + 2 * count : 2]
    return [re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in words]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wnids", required=True, type=Path, help="the 1000 wnids, one per line, in class order")
    parser.add_argument("--wordnet", default="/usr/share/wordnet/data.noun", type=Path, help="WordNet 3.0 data.noun")
    parser.add_argument("--out", default=Path(__file__).with_name("imagenet_classes.tsv"), type=Path)
    args = parser.parse_args(argv)

    wnids = [w.strip() for w in args.wnids.read_text().split() if w.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or not all(re.fullmatch(r"n\d{8}", w) for w in wnids):
        sys.exit(f"{args.wnids}: expected 1000 distinct wnids (n########), got {len(wnids)}")
    if wnids != sorted(wnids):
        sys.exit(f"{args.wnids}: wnids are not in the standard (sorted) class order")
    data_noun = args.wordnet.read_bytes()
    rows = ["class_index\twnid\tsynonyms"]
    for index, wnid in enumerate(wnids):
        words = synset_words(data_noun, int(wnid[1:]))
        rows.append(f"{index}\t{wnid}\t{', '.join(words)}")
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(wnids)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
