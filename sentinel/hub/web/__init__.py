"""The web ledger for people: server-rendered pages in Simplified Chinese and English.

`mount.mount(hub)` is what sentinel.hub.app calls: it builds the `Site` (users, sessions, single
sign-on, templates) and returns the pages' routes. Plain HTML and one stylesheet; no script, no
external resource (the terminals' network is closed). docs/hub.md ("The web ledger") describes
the pages, the roles and the logins.
"""
