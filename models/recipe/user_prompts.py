#!/usr/bin/python3
"""Write the step policy's training prompts for models/default: prompts as users write them.

The policy must follow the prompts people type, not only the captions the model was trained on.
So the training set mixes two sources:
  - captions in the model's own forms (the first --captions lines of policy-captions.txt, written
    by policy_prompts.py), which keep the in-distribution figures;
  - user-style prompts from the templates below, over emoji names (the model's vocabulary) plus colours, materials, settings, styles and made-up words it never saw: bare
    names, "X emoji/icon/sticker/clip art", a colour or a material with an object, two or three
    objects, small scenes, long descriptive prompts, unknown words.
The held-out sets come from elsewhere: policy-heldout.txt (captions of emoji the policy never
trains on) and policy-heldout-ood.txt (written by hand in phrasings these templates never use).
Emoji named in either held-out file are left out here.

It also writes policy-heldout-tuxpaint.txt, a second out-of-distribution set from a third source:
the English sentences people wrote for Tux Paint's stamps ("A sword in the stone").
--clipart N adds N titles people gave their clip art (openclipart-svg) to the training prompts: the
experiment in models/default/README.md (*More training prompts*), which did not help, so 0 by default.

Usage: /usr/bin/python3 models/recipe/user_prompts.py [--user 120] [--captions 60] [--clipart 0] [--tuxpaint 60] [--seed 13]
Reads /usr/share/unicode/emoji/emoji-test.txt (unicode-data), policy-captions.txt and
/usr/share/tuxpaint/stamps (tuxpaint-stamps-default; with --clipart, /usr/share/openclipart/svg from
openclipart-svg); writes models/recipe/policy-train.txt and policy-heldout-tuxpaint.txt. Deterministic for a seed.
"""
import argparse
import glob
import html
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
CLIPART = "/usr/share/openclipart/svg"  # openclipart-svg (public domain): people's titles for their clip art
TUXPAINT = "/usr/share/tuxpaint/stamps"  # tuxpaint-stamps-default (GPL-2): one English sentence per stamp
# Titles that name a pattern, a flag, a map, an author or a part of a layout, not a picture.
CLIPART_DROP = re.compile(r"clipart by|openclipart|pattern|flag|map of|hotel icon|corner|border|frame|symbol|sign\b|\bicon\b|logo|button|led\b|font|alphabet|letter|number|arrow", re.I)

# Groups whose emoji are things one draws as an object (faces and symbols read oddly with a colour).
OBJECT_GROUPS = {"Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects"}
COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "brown", "grey", "golden", "silver", "teal"]
MATERIALS = ["wooden", "glass", "metal", "paper", "plastic", "stone", "knitted", "ceramic", "chocolate", "crystal"]
SIZES = ["tiny", "big", "little", "giant", "cute", "old", "shiny", "broken", "fluffy", "happy"]
SETTINGS = ["on a table", "in the snow", "at night", "in the rain", "on the beach", "in a forest", "under a tree",
            "on a white background", "in space", "in a garden", "by a lake", "on a hill"]
STYLES = ["emoji", "icon", "sticker", "clip art", "flat icon", "cartoon", "simple drawing", "illustration"]
LONG_TAILS = ["with big eyes", "smiling", "with a red bow", "in soft morning light", "surrounded by flowers",
              "with a long shadow", "seen from above", "with sparkles around it"]


def pseudo_word(rng):
    """A made-up word: the text encoder has seen its pieces, never the word."""
    syllables = ["zor", "bli", "quax", "mep", "tru", "vel", "kro", "fen", "dax", "plo", "snu", "gri", "wob", "yul"]
    return "".join(rng.sample(syllables, rng.randint(2, 3)))


def load_emoji():
    """(name, group) of fully-qualified emoji without skin tones, flags or keycaps."""
    out, group = [], None
    for line in open(EMOJI_TEST, encoding="utf-8"):
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        if "; fully-qualified" not in line or "skin tone" in line:
            continue
        name = re.sub(r"^.*?E\d+\.\d+ ", "", line.split("#", 1)[1].strip())
        if group in ("Flags", "Component") or name.startswith("keycap"):
            continue
        out.append((name.replace(":", "").strip(), group))
    return out


def held_out_text():
    text = ""
    for name in ("policy-heldout.txt", "policy-heldout-ood.txt"):
        path = os.path.join(HERE, name)
        if os.path.exists(path):
            text += open(path, encoding="utf-8").read().lower()
    return text


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def user_prompt(rng, objects, names):
    """One prompt from one of the families, chosen uniformly."""
    obj = lambda: rng.choice(objects)  # noqa: E731
    family = rng.randrange(9)
    if family == 0:
        return rng.choice(names)
    if family == 1:
        return f"{rng.choice(names)} {rng.choice(STYLES)}"
    if family == 2:
        c, o = rng.choice(COLOURS), obj()
        return f"{article(c)} {c} {o}"
    if family == 3:
        m, o = rng.choice(MATERIALS), obj()
        return f"{article(m)} {m} {o}" + (f" {rng.choice(STYLES)}" if rng.random() < 0.4 else "")
    if family == 4:
        a, b = obj(), obj()
        if rng.random() < 0.5:
            return f"{article(a)} {a} and {article(b)} {b}"
        c = obj()
        return f"{a}, {b} and {c}"
    if family == 5:
        a, b = obj(), obj()
        return f"{article(a)} {a} next to {article(b)} {b} {rng.choice(SETTINGS)}"
    if family == 6:
        s, o = rng.choice(SIZES), obj()
        return f"{article(s)} {s} {o} {rng.choice(SETTINGS)}"
    if family == 7:
        s, c, o = rng.choice(SIZES), rng.choice(COLOURS), obj()
        tails = rng.sample(LONG_TAILS, 2)
        return f"{article(s)} {s} {c} {o} {tails[0]}, {tails[1]}, {rng.choice(SETTINGS)}, {rng.choice(STYLES)}, white background"
    w = pseudo_word(rng)
    return rng.choice([f"{article(w)} {w} {obj()}", f"{w}", f"{obj()} from the planet {w.capitalize()}", f"{w} {rng.choice(STYLES)}"])


def clipart_titles():
    """Titles people gave their clip art, cleaned to prompt-like text (no file-name noise)."""
    if not os.path.isdir(CLIPART):
        raise SystemExit(f"{CLIPART} not found: apt install openclipart-svg")
    titles = set()
    for path in sorted(glob.glob(os.path.join(CLIPART, "**", "*.svg"), recursive=True)):
        head = open(path, encoding="utf-8", errors="replace").read(20000)
        m = re.search(r"<dc:title>([^<]*)</dc:title>", head)
        creator = re.search(r"<dc:creator>.*?<dc:title>([^<]*)</dc:title>", head, re.S)
        if not m or (creator and creator.group(1).strip() == m.group(1).strip()):
            continue
        t = html.unescape(m.group(1)).replace("_", " ").replace("-", " ")
        t = re.sub(r"\s+(\d+|v\.?\d+|\(b and w\))\s*$", "", t.strip(), flags=re.I)
        t = re.sub(r"\s+", " ", t).strip()
        words = t.split()
        if not 1 <= len(words) <= 8 or CLIPART_DROP.search(t) or not re.search(r"[a-z]{3}", t.lower()) or re.search(r"\d{2,}", t):
            continue
        titles.add(t.lower() if t.isupper() else t)
    return sorted(titles)


def tuxpaint_sentences():
    """The English sentence of each Tux Paint stamp ("A frog.", "A girl riding a bicycle.")."""
    if not os.path.isdir(TUXPAINT):
        raise SystemExit(f"{TUXPAINT} not found: apt install tuxpaint-stamps-default")
    out = set()
    for path in sorted(glob.glob(os.path.join(TUXPAINT, "**", "*.txt"), recursive=True)):
        first = open(path, encoding="utf-8", errors="replace").readline().strip().rstrip(".")
        if first and "=" not in first and len(first.split()) <= 12:
            out.add(first)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", type=int, default=120, help="user-style prompts")
    ap.add_argument("--captions", type=int, default=60, help="captions in the model's own forms")
    ap.add_argument("--clipart", type=int, default=0, help="openclipart titles (360 in the experiment of models/default/README.md, not shipped)")
    ap.add_argument("--tuxpaint", type=int, default=60, help="Tux Paint stamp sentences for the second out-of-distribution set")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    held = held_out_text()
    emoji = [(n, g) for n, g in load_emoji() if n.lower() not in held]
    names = sorted({n for n, _ in emoji})
    objects = sorted({n for n, g in emoji if g in OBJECT_GROUPS and len(n.split()) <= 2})
    captions = [l.strip() for l in open(os.path.join(HERE, "policy-captions.txt"), encoding="utf-8") if l.strip() and not l.startswith("#")]
    user, seen = [], set()
    while len(user) < args.user:
        p = user_prompt(rng, objects, names)
        if p not in seen and p.lower() not in held:
            seen.add(p)
            user.append(p)
    tux = rng.sample(tuxpaint_sentences(), args.tuxpaint)
    tux_text = "\n".join(tux).lower()
    clip = [t for t in clipart_titles() if t.lower() not in held and t.lower() not in tux_text and t not in seen] if args.clipart else []
    clip = rng.sample(clip, min(args.clipart, len(clip)))
    prompts = captions[: args.captions] + user + clip
    with open(os.path.join(HERE, "policy-train.txt"), "w", encoding="utf-8") as f:
        f.write(f"# generated by user_prompts.py --user {args.user} --captions {args.captions} --clipart {args.clipart} --tuxpaint {args.tuxpaint} --seed {args.seed}; one prompt a line\n")
        f.write("\n".join(prompts) + "\n")
    with open(os.path.join(HERE, "policy-heldout-tuxpaint.txt"), "w", encoding="utf-8") as f:
        f.write("# Held-out prompts OUT of the policy's training distribution from a second source: the English sentence of\n")
        f.write(f"# {args.tuxpaint} Tux Paint stamps (tuxpaint-stamps-default, GPL-2), sampled by user_prompts.py --seed {args.seed}. One prompt a line.\n")
        f.write("\n".join(tux) + "\n")
    print(f"wrote policy-train.txt: {len(prompts)} prompts ({args.captions} captions, {len(user)} user-style, {len(clip)} clip-art titles)")
    print(f"wrote policy-heldout-tuxpaint.txt: {len(tux)} prompts")


if __name__ == "__main__":
    main()
