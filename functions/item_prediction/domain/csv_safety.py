"""CSV cells that are safe to open in a spreadsheet (CSV, or formula, injection; OWASP's rule).

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula (tab and
carriage return are also leading characters that some accept before one), so an item id such as
``=HYPERLINK("http://x", "click")`` in a file a person opens is a link or a command. Such cells get
a leading single quote: the spreadsheet shows the text and runs nothing. Plain numbers (``-3``,
``+1.5``, ``-2,5``, ``-1e5``) stay as they are.

Only files written for people are escaped (quarantined rows, predictions); files machines read
back (validated rows, features), DynamoDB, JSON and the API keep the original text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where frames are written: the API function has no pandas layer
    import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?"
_TEXT_TYPES = ("string", "mixed", "mixed-integer")  # what pandas' .str accessor works on


def escape_cells(values: pd.Series) -> pd.Series:
    """``values`` with every risky text cell prefixed by ``'`` (non-text cells unchanged)."""
    import pandas as pd

    if pd.api.types.infer_dtype(values, skipna=True) not in _TEXT_TYPES:
        return values
    text = values.str
    starts = text.startswith(TRIGGERS, na=False)
    if not starts.any():
        return values
    risky = starts & ~text.fullmatch(PLAIN_NUMBER, na=False)
    return values.mask(risky, "'" + values[risky].astype(str))


def escape_names(names: list[str]) -> list[str]:
    """Column names (a header row is cells too), escaped like :func:`escape_cells`."""
    import pandas as pd

    return escape_cells(pd.Series(names, dtype=object)).tolist()


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every risky text cell escaped (a copy when any is); only text (object or
    string) columns are looked at, by position, so repeated column names are no obstacle."""
    import pandas as pd

    result = frame
    for position, dtype in enumerate(frame.dtypes):
        if pd.api.types.is_string_dtype(dtype):  # object, str and string columns
            values = frame.iloc[:, position]
            escaped = escape_cells(values)
            if escaped is not values:
                result = result.copy(deep=False) if result is frame else result
                result.isetitem(position, escaped)
    return result
