"""Column values as the correlator reads them, vectorized: text (group keys and `value_count`),
numbers (the `value_*` aggregates) and case-folded codes; event times are `sigmarrow.times`'.
docs/semantics.md ("Correlations") states each rule."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A JSON number: what `value_*` accept as text (no spaces, no `+`, no `inf`).
_JSON_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


def _as_text(array: pa.Array) -> pa.StringArray:
    if pa.types.is_struct(array.type) or pa.types.is_list(array.type) or pa.types.is_map(array.type):
        return pa.nulls(len(array), pa.string())
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.nulls(len(array), pa.string())


def texts(array: pa.Array | pa.ChunkedArray | None, length: int) -> pa.StringArray | pa.DictionaryArray:
    """Each value as text (null where absent): strings as they are, integers in decimal,
    booleans `true`/`false`, floats as the shortest text that reads back (`10.0` is `10`).
    Dictionary arrays stay dictionaries (of text). A missing column (`None`) and values of
    other types (structs, lists) are absent."""
    if array is None:
        return pa.nulls(length, pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        return pa.DictionaryArray.from_arrays(array.indices.cast(pa.int32()), _as_text(array.dictionary))
    return _as_text(array)


def numbers(text: pa.StringArray) -> np.ndarray:
    """The finite number each text is as a JSON number, NaN where it is none (the `value_*`
    aggregates read values through `texts`, so numeric columns arrive as their text)."""
    numeric = pc.fill_null(pc.match_substring_regex(text, _JSON_NUMBER), False)
    values = pc.cast(pc.if_else(numeric, text, "nan"), pa.float64()).to_numpy(zero_copy_only=False)
    return np.where(np.isfinite(values), values, np.nan)


def fold(text: pa.StringArray) -> pa.StringArray:
    """Each text's case fold, as Sigma compares strings: ASCII with Arrow's lower-casing,
    other text with Python's full `casefold`."""
    if pc.all(pc.string_is_ascii(text)).as_py() is not False:
        return pc.utf8_lower(text)
    return pa.array([None if s is None else s.casefold() for s in text.to_pylist()], pa.string())


def folded_codes(text: pa.StringArray) -> tuple[np.ndarray, pa.StringArray]:
    """(the code of each of the distinct `text`s' case fold; the folded text of each code)."""
    folded = fold(text)
    if pc.all(pc.equal(folded, text)).as_py() is not False:  # folding merges nothing
        return np.arange(len(text), dtype=np.int64), text
    encoded = pc.dictionary_encode(folded)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary
