"""The whole configuration: the aggregate of every section and its loader."""
