"""Source tables: where a tracked frame's rows come from (file, format, line of every row).

The name this part of the tables layer goes by: :class:`TableSource` (one per file read), the line of every row
of a CSV file, and the look-up of the rows of given file lines.  The code lives in :mod:`whence.tabular.sources`
(the former name, which keeps working); import from here.
"""

from .sources import (SkipRecorder, TableSource, csv_line_options, csv_line_reason, csv_record_lines,  # noqa: F401
                      register, rows_of_lines, table_source)

__all__ = ["TableSource", "table_source", "register", "csv_line_options", "csv_line_reason", "csv_record_lines",
           "SkipRecorder", "rows_of_lines"]
