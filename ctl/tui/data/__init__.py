"""The TUI's data layer: API access for the screens, with no Textual imports.

Screens call into these modules and get plain Python values back (lists of kinds, rows,
describe text, trees); the live parts (:class:`~ctl.tui.data.feed.Feed`,
:class:`~ctl.tui.data.session.Session`'s connection monitor) call back into the UI through
plain callables, always on the app's event loop.
"""
