"""The data cooperative's HTTP API (Flask application factory and blueprints): members,
consents, proposals, votes, releases, audit and the tester endpoints.

Not built yet: no open issue covers it at the time of writing; the package exists because the
design card fixes the layout.
"""
