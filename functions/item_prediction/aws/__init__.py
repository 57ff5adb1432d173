"""The AWS adapters: S3 and DynamoDB behind small storage functions, the table's keys, the ingest
ledger and lease, S3 and EventBridge events, settings from the environment and the Powertools
objects each handler shares. pandas is imported only where frames are read or written (the read
API's function has no pandas layer)."""
