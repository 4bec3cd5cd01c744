"""Reports: financial, operations, risk, credit and regulatory-style, as API data, CSV and printable pages."""
