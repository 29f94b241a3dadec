"""A shared remote cache (S3, GCS, Azure, a folder): the cache protocol and leases (``cache``) over
the storage backends (``storage``). The only home of fsspec. Imports ``state`` (the store's formats,
atomic files) below it, nothing above."""
