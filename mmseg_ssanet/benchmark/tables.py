"""What every benchmark writes: Markdown tables and JSON."""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Sequence, Tuple, Union

Format = Union[str, Callable[[dict], str]]
Column = Union[str, Tuple[str, str], Tuple[str, str, Format]]


def _cell(row: dict, key: str, fmt, missing: str) -> str:
    if callable(fmt):
        return fmt(row)
    value = row.get(key)
    if value is None:
        return missing
    if fmt:
        return format(value, fmt)
    return format(value, '.3g') if isinstance(value, float) else str(value)


def markdown_table(rows: List[dict],
                   columns: Sequence[Column],
                   missing: str = '-') -> str:
    """A Markdown table, a line per row.

    Args:
        rows (list[dict]): the rows.
        columns (Sequence): per column its key in the rows, or ``(key,
            header)``, or ``(key, header, fmt)``; ``fmt``: a format spec of
            the value (``'.1f'``) or a function of the row giving the cell.
            Without one, floats are written ``'.3g'``.
        missing (str): the cell of a value that is absent or None.

    Returns:
        str: the table, ending in a newline.
    """
    spec = [
        (c, c,
         None) if isinstance(c, str) else tuple(c) + (None, ) * (3 - len(c))
        for c in columns
    ]
    lines = [
        '| ' + ' | '.join(header for _, header, _ in spec) + ' |',
        '|' + ' --- |' * len(spec)
    ]
    for row in rows:
        lines.append('| ' + ' | '.join(
            _cell(row, key, fmt, missing) for key, _, fmt in spec) + ' |')
    return '\n'.join(lines) + '\n'


def write_outputs(folder: str, files: Dict[str, object]) -> None:
    """Writes a tool's results into ``folder`` (made if missing).

    Args:
        folder (str): where.
        files (dict): file name -> its content: a str is written as it is,
            anything else as JSON (indented by one).
    """
    os.makedirs(folder, exist_ok=True)
    for name, content in files.items():
        with open(osp.join(folder, name), 'w') as f:
            if isinstance(content, str):
                f.write(content)
            else:
                json.dump(content, f, indent=1)
