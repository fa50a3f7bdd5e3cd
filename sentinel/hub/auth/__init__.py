"""People of the hub: users (argon2id hashes, lockout), roles per org unit, sessions, single sign-on.

The pages (sentinel.hub.web) and `sentinel hub user …` use these; the tables live in the hub's
one schema (sentinel.hub.auth.tables, migration step 2). docs/hub.md ("People and logins").
"""
