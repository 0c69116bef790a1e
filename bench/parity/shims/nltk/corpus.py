"""Shim: cfnow imports wordnet for text counterfactuals only."""


class _Unavailable:
    def __getattr__(self, name):
        raise NotImplementedError("nltk.corpus.wordnet is not available in the parity harness")


wordnet = _Unavailable()
