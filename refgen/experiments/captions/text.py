"""Captions of digit images, made from their labels, and their word-level tokens.

A caption c is a short English sentence built by a template from the digit label(s) of an
image x and, for some templates, a style word from the image itself:

    single digit d:  "a seven" | "the digit 7" | "seven, written thin" | "a handwritten 7"
                     | "the number seven"
    two digits (l left of r, on a canvas of two images side by side):
                     "a 3 left of a 7" | "a seven right of a three" | "three then seven"
                     | "the digits 3 and 7" | "a thin three left of a thick seven"

Composition is what the two-digit templates test: "a 7 right of a 3" names the right digit
first, so a model must read the relation, not the word order, to place the digits.

Style: "thin" when the image's ink mass sum_ij x_ij is below the median ink mass of its
class in the training set, "thick" otherwise (``ink_styles``), so each style word covers
half of every class.

Tokens are whole words (and the comma) from the fixed ``VOCAB``; id 0 is padding and id 1
the null caption ``<null>`` that stands for "no caption" in classifier-free guidance
(Ho & Salimans 2022). ``caption_table`` precomputes the tokens of every template for every
example, (N, J, S), so a training step picks a template per example by indexing (no string
work, no host transfer, in the loop).

The strings are built on the host (Python text); the token arrays are moved to the backend.
"""
import autodiff
from autodiff import backend as B

__all__ = ["with_overrides", "WORDS", "NUMERALS", "SPECIALS", "PAD", "NULL", "VOCAB", "TOKEN_ID",
           "SINGLE_TEMPLATES", "PAIR_TEMPLATES", "STYLES", "single_caption", "pair_caption",
           "tokenize", "detokenize", "caption_length", "null_tokens", "drop_captions",
           "caption_table", "ink_mass", "ink_styles", "class_ink_medians"]

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NUMERALS = tuple(str(d) for d in range(10))
STYLES = ("thin", "thick")                       # style index 0, 1
SPECIALS = ("<pad>", "<null>")
PAD, NULL = 0, 1
_FUNCTION_WORDS = ("a", "an", "the", "digit", "digits", "number", "handwritten", "written",
                   ",", "left", "right", "of", "and", "then")
VOCAB = SPECIALS + WORDS + NUMERALS + STYLES + _FUNCTION_WORDS
TOKEN_ID = {w: i for i, w in enumerate(VOCAB)}

# one function per template; d a digit 0..9, s a style index (0 thin, 1 thick)
SINGLE_TEMPLATES = (
    lambda d, s: f"{_article(WORDS[d])} {WORDS[d]}",
    lambda d, s: f"the digit {NUMERALS[d]}",
    lambda d, s: f"{WORDS[d]}, written {STYLES[s]}",
    lambda d, s: f"a handwritten {NUMERALS[d]}",
    lambda d, s: f"the number {WORDS[d]}",
)
# l, r the left and right digit, sl, sr their styles
PAIR_TEMPLATES = (
    lambda l, r, sl, sr: f"{_article(NUMERALS[l])} {NUMERALS[l]} left of "
                         f"{_article(NUMERALS[r])} {NUMERALS[r]}",
    lambda l, r, sl, sr: f"{_article(WORDS[r])} {WORDS[r]} right of "
                         f"{_article(WORDS[l])} {WORDS[l]}",
    lambda l, r, sl, sr: f"{WORDS[l]} then {WORDS[r]}",
    lambda l, r, sl, sr: f"the digits {NUMERALS[l]} and {NUMERALS[r]}",
    lambda l, r, sl, sr: f"a {STYLES[sl]} {WORDS[l]} left of a {STYLES[sr]} {WORDS[r]}",
)


def _words(text):
    """The words of a caption; a comma is a word of its own ("seven, written thin")."""
    return str(text).lower().replace(",", " , ").split()


def _article(word):
    """'an' before a vowel sound ("an eight", "an 8"), 'a' otherwise."""
    return "an" if word in ("eight", "8") else "a"


def _check_digit(d, name):
    if isinstance(d, bool) or int(d) != d or not 0 <= int(d) <= 9:
        raise ValueError(f"captions: {name} must be a digit 0..9, got {d!r}")
    return int(d)


def _check_style(s, name):
    if isinstance(s, bool) or int(s) != s or int(s) not in (0, 1):
        raise ValueError(f"captions: {name} must be a style index 0 (thin) or 1 (thick), "
                         f"got {s!r}")
    return int(s)


def _check_template(j, templates, name):
    if isinstance(j, bool) or int(j) != j or not 0 <= int(j) < len(templates):
        raise ValueError(f"captions: {name} must be a template index in 0..{len(templates) - 1},"
                         f" got {j!r}")
    return int(j)


def single_caption(digit, template=0, style=0):
    """The caption of one digit by template ``template`` (index into ``SINGLE_TEMPLATES``);
    ``style`` 0 thin, 1 thick (used by the templates that name it)."""
    j = _check_template(template, SINGLE_TEMPLATES, "template")
    return SINGLE_TEMPLATES[j](_check_digit(digit, "digit"), _check_style(style, "style"))


def pair_caption(left, right, template=0, styles=(0, 0)):
    """The caption of a two-digit canvas, ``left`` digit left of ``right`` (index into
    ``PAIR_TEMPLATES``); ``styles`` = (left style, right style)."""
    j = _check_template(template, PAIR_TEMPLATES, "template")
    if len(styles) != 2:
        raise ValueError(f"captions: styles must be a pair (left, right), got {styles!r}")
    return PAIR_TEMPLATES[j](_check_digit(left, "left"), _check_digit(right, "right"),
                             _check_style(styles[0], "styles[0]"),
                             _check_style(styles[1], "styles[1]"))


def caption_length(digits_per_canvas):
    """S, the longest caption of the templates for 1 or 2 digits per canvas, in tokens."""
    if digits_per_canvas == 1:
        texts = [single_caption(d, j, s) for d in range(10) for j in range(len(SINGLE_TEMPLATES))
                 for s in (0, 1)]
    elif digits_per_canvas == 2:
        texts = [pair_caption(d, 8, j, (0, 1)) for d in range(10)
                 for j in range(len(PAIR_TEMPLATES))]
    else:
        raise ValueError(f"captions: digits_per_canvas must be 1 or 2, got {digits_per_canvas!r}")
    return max(len(_words(t)) for t in texts)


def tokenize(captions, length):
    """Word ids of each caption, right-padded with ``PAD`` to ``length``.

    :param captions: a list of B strings (words separated by spaces)
    :param length: S; a caption longer than S is an error
    :return: (B, S) int64 backend array
    """
    if isinstance(captions, str):
        raise TypeError("tokenize: captions must be a list of strings, got one string")
    rows = []
    for text in captions:
        words = _words(text)
        unknown = [w for w in words if w not in TOKEN_ID]
        if unknown:
            raise ValueError(f"tokenize: unknown word(s) {unknown} in caption {text!r}; the "
                             f"vocabulary is {' '.join(VOCAB[len(SPECIALS):])}")
        if not words:
            raise ValueError("tokenize: empty caption (use null_tokens for 'no caption')")
        if len(words) > length:
            raise ValueError(f"tokenize: caption {text!r} has {len(words)} words, more than "
                             f"length={length}")
        rows.append([TOKEN_ID[w] for w in words] + [PAD] * (length - len(words)))
    # host-side: Python lists of ids moved to the backend once
    return B.xp.asarray(rows, dtype=B.numpy.int64).reshape(len(rows), int(length))


def detokenize(tokens):
    """The strings of a (B, S) token array (padding dropped; the null caption as '<null>')."""
    data = tokens.data if isinstance(tokens, autodiff.Tensor) else tokens
    rows = B.to_numpy(data).tolist()       # host-side: text is made on the host
    return [" ".join(VOCAB[i] for i in row if i != PAD).replace(" ,", ",") for row in rows]


def null_tokens(batch, length):
    """(batch, S) tokens of the null caption: ``<null>`` then padding."""
    out = B.xp.full((int(batch), int(length)), PAD, dtype=B.numpy.int64)
    out[:, 0] = NULL
    return out


def drop_captions(tokens, p, generator=None):
    """Replace each caption (row of tokens (B, S)) by the null caption with probability p:
    caption dropout, which trains one network as both f(x, c) and f(x, null)
    (Ho & Salimans 2022, Algorithm 1, with a caption in place of a class label)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop_captions: p must be in [0, 1], got {p}")
    data = tokens.data if isinstance(tokens, autodiff.Tensor) else B.xp.asarray(tokens)
    if data.ndim != 2 or data.dtype.kind not in "iu":
        raise ValueError(f"drop_captions: tokens must be (B, S) integers, got shape "
                         f"{tuple(data.shape)} and dtype {data.dtype}")
    gen = generator if generator is not None else B.default_generator()
    drop = gen.random((data.shape[0], 1), B.numpy.float64) < p            # (B, 1)
    return B.xp.where(drop, null_tokens(data.shape[0], data.shape[1]), data)


def ink_mass(x):
    """sum_ij x_ij per image: x (N, C, H, W) backend array -> (N,)."""
    return x.reshape(x.shape[0], -1).sum(axis=1)


def class_ink_medians(x, digits):
    """The median ink mass of each class 0..9, (10,), from images x (N, 1, H, W) and labels
    (N,); a class absent from the data is an error (its style would be undefined)."""
    xp = B.xp
    mass, digits = ink_mass(x), xp.asarray(digits)
    medians = []
    for d in range(10):
        members = mass[digits == d]
        if members.size == 0:
            raise ValueError(f"class_ink_medians: no image of class {d} in the data")
        medians.append(xp.median(members))
    return xp.stack(medians)


def ink_styles(x, digits, medians):
    """Style index per image: 0 (thin) below its class's median ink mass, 1 (thick) at or
    above. x (N, 1, H, W), digits (N,), medians (10,) -> (N,) int64."""
    xp = B.xp
    return (ink_mass(x) >= medians[xp.asarray(digits)]).astype(B.numpy.int64)


def caption_table(digits, styles, length=None):
    """Tokens of every template for every example: (N, J, S) int64 backend array.

    :param digits: (N,) digit labels (one digit per canvas) or (N, 2) (left, right)
    :param styles: the same shape as digits, style indices (0 thin, 1 thick)
    :param length: S (default ``caption_length``)
    """
    digits = B.to_numpy(B.xp.asarray(digits))     # host-side: strings are built on the host
    styles = B.to_numpy(B.xp.asarray(styles))
    if digits.shape != styles.shape or digits.ndim not in (1, 2) or \
            (digits.ndim == 2 and digits.shape[1] != 2):
        raise ValueError(f"caption_table: digits and styles must both be (N,) or (N, 2), got "
                         f"{tuple(digits.shape)} and {tuple(styles.shape)}")
    k = 1 if digits.ndim == 1 else 2
    length = length or caption_length(k)
    if k == 1:
        texts = [single_caption(d, j, s) for d, s in zip(digits.tolist(), styles.tolist())
                 for j in range(len(SINGLE_TEMPLATES))]
        J = len(SINGLE_TEMPLATES)
    else:
        texts = [pair_caption(d[0], d[1], j, tuple(s))
                 for d, s in zip(digits.tolist(), styles.tolist())
                 for j in range(len(PAIR_TEMPLATES))]
        J = len(PAIR_TEMPLATES)
    return tokenize(texts, length).reshape(digits.shape[0], J, length)


def with_overrides(defaults, overrides, where):
    """``defaults`` updated by ``overrides``; an override that names no default is an error
    that lists the known options (a misspelt option must not be ignored silently)."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown}; known: {', '.join(defaults)}")
    config = dict(defaults)
    config.update(overrides)
    return config
