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

Usage: /usr/bin/python3 models/recipe/user_prompts.py [--user 120] [--captions 60] [--seed 13]
Reads /usr/share/unicode/emoji/emoji-test.txt (unicode-data) and policy-captions.txt; writes models/recipe/policy-train.txt. Deterministic for a seed.
"""
import argparse
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", type=int, default=120, help="user-style prompts")
    ap.add_argument("--captions", type=int, default=60, help="captions in the model's own forms")
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
    prompts = captions[: args.captions] + user
    with open(os.path.join(HERE, "policy-train.txt"), "w", encoding="utf-8") as f:
        f.write(f"# generated by user_prompts.py --user {args.user} --captions {args.captions} --seed {args.seed}; one prompt a line\n")
        f.write("\n".join(prompts) + "\n")
    print(f"wrote policy-train.txt: {len(prompts)} prompts ({args.captions} captions, {len(user)} user-style)")


if __name__ == "__main__":
    main()
