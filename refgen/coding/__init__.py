"""Entropy coding: a model's probabilities turned into a file and back (``rans``).

``rans.quantize`` makes integer frequency tables from probabilities, ``rans.encode`` codes
symbols with their tables into a stream of 16-bit words (many lanes interleaved at once),
``rans.RansDecoder`` decodes it position by position (so an autoregressive model can supply
each table from the symbols decoded before it); ``rans.AnsStack`` pushes and pops in any
order (bits-back coding). The compression and language experiments
(``refgen experiment compression``, ``refgen experiment language``) drive it with
autoregressive models.
"""
from . import rans
from .rans import AnsStack, RansDecoder, decode, encode, quantize

__all__ = ["rans", "quantize", "encode", "decode", "RansDecoder", "AnsStack"]
