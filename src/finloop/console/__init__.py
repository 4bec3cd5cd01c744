"""The web console: the pages finance, risk and operations staff and management work in.

Server-rendered HTML (Jinja2) with charts drawn as SVG on the server, so the console needs no internet and
no JavaScript build: its one script and one style sheet are served from this package. Every page reads
through the same services as the API, and every action goes through the same permission checks
(``tenancy.PERMISSIONS``), in one transaction that also writes the audit log.
"""
