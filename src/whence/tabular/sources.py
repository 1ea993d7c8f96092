"""Former name of :mod:`whence.tabular.source_tables` (where a tracked frame's rows come from); kept so that
existing imports keep working. Import from :mod:`whence.tabular.source_tables`.
"""

from .source_tables import (SkipRecorder, TableSource, csv_line_options, csv_line_reason,  # noqa: F401
                            csv_record_lines, register, rows_of_lines, table_source)

__all__ = ["TableSource", "table_source", "register", "csv_line_options", "csv_line_reason", "csv_record_lines",
           "SkipRecorder", "rows_of_lines"]
