"""Getting data out and moving it: row exports (CSV, xlsx, JSON), item copies, and bundles (one
JSON document with an item's fields, rows, widgets and series) that another deployment imports."""
