"""The live resource table: a DataTable that a feed keeps current, filtered and sorted.

:meth:`ResourceTable.push` takes one change from a :class:`~ctl.tui.data.feed.Feed`
(``obj=None`` for a deletion). Changes are coalesced: the first one of a burst schedules a
flush on the next turn of the message loop, later ones only replace the pending entry, so a
relist of 5,000 pods is one flush and a single watch event reaches the screen one loop turn
after it arrived. A flush updates only the cells that changed, adds and removes rows, and
re-sorts only when a row was added or a sort-column cell changed; the cursor stays on the
object it was on.

The model (``rows``: object key -> (object, cells)) is the whole feed; what the DataTable
holds is the model filtered by the ``/`` text. Changing the filter, the sort or the columns
rebuilds the DataTable from the model. AGE cells are re-rendered on a timer (the clock is
injected: with a fixed clock nothing ticks). Clicking a header sorts by it (again: reversed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.cells import cell_len
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, Row, RowDoesNotExist, RowKey

from ctl.tui.data import rows as R
from ctl.tui.data.rows import ColumnSpec


def widen(table: DataTable[Any], column: str, width: int) -> None:
    """Make ``column`` at least ``width`` cells wide for an updated cell.

    ``update_cell(update_width=True)`` re-measures the whole column whenever a cell gets
    narrower, which for thousands of rows and a burst of updates is quadratic; columns here
    only ever grow (as they do when rows are added), which costs O(1) per update.
    """
    col = table.columns.get(ColumnKey(column))
    if col is not None and width > col.content_width:
        col.content_width = width
        table._require_update_dimensions = True  # recompute the virtual size on idle
        table.check_idle()


class ResourceTable(DataTable[str]):
    def __init__(self, *, tick: float = 2.0, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.specs: list[ColumnSpec] = []
        self.model: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
        self.filter_text = ""
        self.sort_column: int | None = None
        self.sort_reverse = False
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._flush_scheduled = False
        self._tick = tick
        self.flushes = 0
        # time.perf_counter() of the last flush and rebuild, and a hook the benchmark uses to time updates
        self.last_flush = 0.0
        self.last_rebuild = 0.0
        self.on_flushed: Callable[[set[str]], None] | None = None

    def on_mount(self) -> None:
        if self._tick > 0:
            self.set_interval(self._tick, self.refresh_ages)

    # ------------------------------------------------------------------ configuration
    def configure(self, specs: list[ColumnSpec]) -> None:
        """New columns (another kind or scope): empties the model."""
        self.specs = specs
        self.model.clear()
        self._pending.clear()
        self.sort_column = next((i for i, s in enumerate(specs) if s.header == "NAME"), None)
        self.sort_reverse = False
        self.clear(columns=True)
        for i, s in enumerate(specs):
            self.add_column(s.header, key=str(i))

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self.rebuild()

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        if not self.specs:
            return
        column %= len(self.specs)
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._sort()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    # ------------------------------------------------------------------ live updates
    def push(self, key: str, obj: dict[str, Any] | None) -> None:
        self._pending[key] = obj
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.call_later(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        if not pending:
            return
        selected = self.selected_key()
        resort = False
        sort_key = str(self.sort_column) if self.sort_column is not None else None
        added: list[tuple[str, tuple[str, ...]]] = []
        for key, obj in pending.items():
            shown = key in self.rows
            if obj is None:
                self.model.pop(key, None)
                if shown:
                    self.remove_row(key)
                continue
            cells = R.cells(self.specs, obj)
            old = self.model.get(key)
            self.model[key] = (obj, cells)
            want = R.matches(self.filter_text, cells)
            if shown and not want:
                self.remove_row(key)
            elif want and not shown:
                added.append((key, cells))
            elif shown and old is not None:
                for i, (a, b) in enumerate(zip(old[1], cells, strict=False)):
                    if a != b:
                        widen(self, str(i), cell_len(b))
                        self.update_cell(key, str(i), b)
                        resort = resort or str(i) == sort_key
        self._bulk_add(added)
        if resort or added:
            self._sort()
        self._keep_cursor(selected)
        self.flushes += 1
        self.last_flush = time.perf_counter()
        if self.on_flushed is not None:
            self.on_flushed(set(pending))

    def rebuild(self) -> None:
        """Refill the DataTable from the model (new filter, columns or a fresh feed)."""
        selected = self.selected_key()
        self.clear()
        self._bulk_add(
            [(k, cells) for k, (_o, cells) in self.model.items() if R.matches(self.filter_text, cells)]
        )
        self._sort()
        self._keep_cursor(selected)
        self.last_rebuild = time.perf_counter()

    def refresh_ages(self) -> None:
        col = next((i for i, s in enumerate(self.specs) if s.header == "AGE"), None)
        if col is None:
            return
        spec = [self.specs[col]]
        for key, (obj, cells) in list(self.model.items()):
            new = R.cells(spec, obj)[0]
            if new != cells[col]:
                self.model[key] = (obj, cells[:col] + (new,) + cells[col + 1 :])
                try:
                    self.update_cell(key, str(col), new)
                except (CellDoesNotExist, RowDoesNotExist, KeyError):
                    pass

    def _bulk_add(self, entries: list[tuple[str, tuple[str, ...]]]) -> None:
        """``add_row`` for many rows at once, as DataTable does it, with its per-row bookkeeping done once.

        ``add_row`` re-validates the cursor (a reactive) and schedules an idle check for every
        row; for thousands of rows that is most of the cost of a rebuild.
        """
        if not entries:
            return
        keys = [c.key for c in self.ordered_columns]
        base = self.row_count
        for i, (key, cells) in enumerate(entries):
            rk = RowKey(key)
            self._row_locations[rk] = base + i
            self._data[rk] = dict(zip(keys, cells, strict=False))
            self.rows[rk] = Row(rk, 1, None, False)
            self._new_rows.add(rk)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if base == 0 and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()

    def _update_dimensions(self, new_rows: Any) -> None:
        """Column widths of new rows from their text (DataTable's own renders and measures each cell).

        Every cell here is a plain one-line string, so its width is its cell length; this
        makes adding 5,000 rows (a filter change, the first list) about 10x cheaper than the
        generic path, which builds a Rich renderable per cell only to measure it. Row heights
        stay 1 (no auto-height rows, no row labels).
        """
        ordered = self.ordered_columns
        for row_key in new_rows:
            data = self._data.get(row_key)
            if data is None:  # removed before the idle that measures it
                continue
            for column in ordered:
                w = cell_len(str(data.get(column.key, "")))
                if w > column.content_width:
                    column.content_width = w
        width = sum(c.get_render_width(self) for c in self.columns.values()) + self._row_label_column_width
        self.virtual_size = Size(
            width, self._total_row_height + (self.header_height if self.show_header else 0)
        )

    # ------------------------------------------------------------------ selection
    def _sort(self) -> None:
        if self.sort_column is None or not self.row_count:
            return
        header = self.specs[self.sort_column].header
        self.sort(str(self.sort_column), key=R.sort_key(header), reverse=self.sort_reverse)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except (CellDoesNotExist, RowDoesNotExist):
            return None

    def selected(self) -> dict[str, Any] | None:
        key = self.selected_key()
        entry = self.model.get(key) if key else None
        return entry[0] if entry else None

    def _keep_cursor(self, key: str | None) -> None:
        if key is not None and key in self.rows:
            row = self.get_row_index(key)
            if row != self.cursor_row:
                self.move_cursor(row=row, animate=False, scroll=False)

    def visible_keys(self) -> list[str]:
        """Row keys in display order (tests and the benchmark read the table through this)."""
        return [str(r.key.value) for r in self.ordered_rows]

    def cell_text(self, key: str, header: str) -> str | None:
        col = next((i for i, s in enumerate(self.specs) if s.header == header), None)
        if col is None or key not in self.rows:
            return None
        return str(self.get_cell(key, str(col)))
