"""Batchify parameters: split the longest value of a dict into four batches.

Run: ``python examples/batchify.py``
"""

from parallelize.batchify import Batchify

data = {
    "colors": range(100),
    "variations": ["a", "b"],
}

batchify = Batchify(data, 4)
for batch in batchify.results():
    print(batch)
# {'colors': [0, 1, ..., 24], 'variations': ['a', 'b']}
# ... four dicts of 25 colors each
