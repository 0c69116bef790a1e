"""Shim for the parity harness: nltk is only used by cfnow's text counterfactuals.

cfnow calls nltk.data.find('corpora/wordnet') at import time and nltk.download()
when that fails; this shim's data.find succeeds so that nothing is downloaded.
"""
from . import data  # noqa: F401
from . import corpus  # noqa: F401


def _unavailable(*args, **kwargs):
    raise NotImplementedError("nltk is not available in the parity harness (text CFs are not compared)")


pos_tag = _unavailable
word_tokenize = _unavailable
download = _unavailable
