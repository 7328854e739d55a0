"""The `twin` command line: thin click commands over `twin` and `storage`."""
