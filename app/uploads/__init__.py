"""`/api/v1/uploads/`: every file the account's items were created or appended from (the items'
reference files), across its items, with the import job that brought each one."""
