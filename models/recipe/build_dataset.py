#!/usr/bin/python3
"""Build the captioned emoji data set from Debian packages into models/recipe/work/.

Sources (all from Debian 12 packages):
  fonts-noto-color-emoji  /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf  (CBDT bitmaps; Apache-2.0 images, OFL font)
  unicode-data            /usr/share/unicode/emoji/emoji-test.txt            (names, groups, subgroups; Unicode licence)
  unicode-cldr-core       /usr/share/unicode/cldr/common/annotations*/en.xml (keywords; Unicode licence)

Output:
  work/images.npy    uint8 [N,64,64,3]  (emoji composited on white, padded to square, Lanczos 64x64)
  work/meta.json     [{"seq": "1F34E", "name": "red apple", "group": ..., "subgroup": ..., "keywords": [...]}]
  work/split.json    indices of training and held-out items (held-out list also in models/recipe/holdout.json)

Usage: /usr/bin/python3 models/recipe/build_dataset.py [--out models/recipe/work] [--limit N]
"""
import argparse
import io
import json
import os
import random
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image
from fontTools.ttLib import TTFont

HERE = os.path.dirname(os.path.abspath(__file__))
FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
CLDR = ["/usr/share/unicode/cldr/common/annotations/en.xml",
        "/usr/share/unicode/cldr/common/annotationsDerived/en.xml"]
SKIN = set(range(0x1F3FB, 0x1F400))
# concepts the model card and CLI examples rely on: never held out
PROTECTED = {"red apple", "cat face", "rocket", "grinning face", "red heart", "sun", "pizza",
             "dog face", "flag: Japan", "smiling face with heart-eyes", "green apple", "banana",
             "fire", "star", "house", "automobile", "tree", "snowman", "ghost", "robot"}
N_HOLDOUT = 64


def parse_emoji_test():
    out = []
    group = subgroup = ""
    for line in open(EMOJI_TEST, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
            continue
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([0-9A-F ]+?)\s*;\s*([a-z-]+)\s*#\s*(\S+)\s+E[0-9.]+\s+(.*)$", line)
        if not m or m.group(2) != "fully-qualified":
            continue
        cps = [int(x, 16) for x in m.group(1).split()]
        if any(c in SKIN for c in cps):
            continue  # skin-tone variants: near duplicates
        if group == "Component":
            continue
        out.append({"cps": cps, "name": m.group(4).strip(), "group": group, "subgroup": subgroup})
    return out


def parse_cldr():
    kw = {}
    for path in CLDR:
        root = ET.parse(path).getroot()
        for a in root.iter("annotation"):
            if a.get("type") == "tts":
                continue
            cp = a.get("cp").replace("\ufe0f", "")
            words = [w.strip() for w in (a.text or "").split("|") if w.strip()]
            kw.setdefault(cp, [])
            for w in words:
                if w not in kw[cp]:
                    kw[cp].append(w)
    return kw


def glyph_map(font):
    cmap = font.getBestCmap()
    rev = {}
    for cp, g in cmap.items():
        rev.setdefault(g, cp)
    seq2glyph = {(cp,): g for cp, g in cmap.items()}
    gsub = font["GSUB"].table
    for lookup in gsub.LookupList.Lookup:
        if lookup.LookupType != 4:
            continue
        for st in lookup.SubTable:
            for first, ligs in st.ligatures.items():
                for lig in ligs:
                    comps = [first] + list(lig.Component)
                    if all(c in rev for c in comps):
                        seq = tuple(rev[c] for c in comps if rev[c] != 0xFE0F)
                        seq2glyph.setdefault(seq, lig.LigGlyph)
    return seq2glyph


def render(strike, glyph, size=64):
    bm = strike[glyph]
    img = Image.open(io.BytesIO(bm.imageData)).convert("RGBA")
    w, h = img.size
    s = max(w, h)
    sq = Image.new("RGBA", (s, s), (255, 255, 255, 255))
    sq.alpha_composite(img, ((s - w) // 2, (s - h) // 2))
    return np.asarray(sq.convert("RGB").resize((size, size), Image.LANCZOS), dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "work"))
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N emoji (smoke tests)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    font = TTFont(FONT)
    strike = font["CBDT"].strikeData[0]
    seq2glyph = glyph_map(font)
    kw = parse_cldr()
    items = parse_emoji_test()
    images, meta, missing = [], [], 0
    for it in items:
        seq = tuple(c for c in it["cps"] if c != 0xFE0F)
        g = seq2glyph.get(seq)
        if g is None or g not in strike:
            missing += 1
            continue
        key = "".join(chr(c) for c in seq)
        name = it["name"]
        keywords = [k for k in kw.get(key, []) if k.lower() != name.lower()]
        images.append(render(strike, g))
        meta.append({"seq": " ".join("%04X" % c for c in it["cps"]), "name": name, "group": it["group"],
                     "subgroup": it["subgroup"], "keywords": keywords})
        if args.limit and len(meta) >= args.limit:
            break
    images = np.stack(images)
    rng = random.Random(1234)
    cand = [i for i, m in enumerate(meta) if m["name"] not in PROTECTED]
    n_hold = 0 if args.limit else N_HOLDOUT
    holdout = sorted(rng.sample(cand, n_hold)) if n_hold else []
    train = [i for i in range(len(meta)) if i not in set(holdout)]
    np.save(os.path.join(args.out, "images.npy"), images)
    json.dump(meta, open(os.path.join(args.out, "meta.json"), "w"), indent=0, ensure_ascii=False)
    json.dump({"train": train, "holdout": holdout}, open(os.path.join(args.out, "split.json"), "w"))
    if not args.limit:
        json.dump({"note": "emoji held out from autoencoder and UNet training (AE PSNR, unseen-caption checks)",
                   "holdout": [{"seq": meta[i]["seq"], "name": meta[i]["name"]} for i in holdout]},
                  open(os.path.join(HERE, "holdout.json"), "w"), indent=1, ensure_ascii=False)
    print(f"{len(meta)} emoji ({missing} without a glyph), {len(train)} train, {len(holdout)} held out -> {args.out}")
    # contact sheet for a visual check
    n = min(len(images), 256)
    sheet = images[:n].reshape(-1, 64, 64, 3)
    cols = 16
    rows = (n + cols - 1) // cols
    canvas = np.full((rows * 64, cols * 64, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] = sheet[i]
    Image.fromarray(canvas).save(os.path.join(args.out, "dataset_sheet.png"))


if __name__ == "__main__":
    sys.exit(main())
