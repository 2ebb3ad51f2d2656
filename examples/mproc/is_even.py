"""The function of the mproc example: it takes one ``(index, row)`` pair of
``DataFrame.iterrows()`` and returns a dict (a list of dicts gives several rows)."""


def is_even(index_row):
    index, row = index_row
    value = row["number"] + row["offset"]
    return {"index": index, "value": value, "is_even": value % 2 == 0, "label": row["label"]}
