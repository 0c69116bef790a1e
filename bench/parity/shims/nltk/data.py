"""Shim: find() succeeds so that cfnow's import never triggers nltk.download()."""


def find(resource_name, *args, **kwargs):
    return resource_name
