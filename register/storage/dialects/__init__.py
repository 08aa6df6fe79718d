"""One `storage.dialect.Statements` implementation per database; `storage.db` chooses one per engine."""
